"""DICOM series discovery and loading, NIfTI, conversion, and the :class:`Volume` type.

Knows nothing of torch: everything here is numpy, pydicom and nibabel (imported lazily).
"""

from medai_lab.io.convert import convert_dicom_to_nifti
from medai_lab.io.dicom_write import write_dicom_series
from medai_lab.io.discovery import DiscoveryReport, SeriesInfo, discover_series
from medai_lab.io.labelmap import LabelMap
from medai_lab.io.loader import load_series
from medai_lab.io.nifti import load_nifti, save_nifti
from medai_lab.io.rtstruct import read_rtstruct, rtstruct_references
from medai_lab.io.rtstruct_write import write_rtstruct
from medai_lab.io.seg import Algorithm, read_seg, seg_references, write_seg
from medai_lab.io.volume import Volume

__all__ = [
    "Algorithm",
    "DiscoveryReport",
    "LabelMap",
    "SeriesInfo",
    "Volume",
    "convert_dicom_to_nifti",
    "discover_series",
    "load_nifti",
    "load_series",
    "read_rtstruct",
    "read_seg",
    "rtstruct_references",
    "save_nifti",
    "seg_references",
    "write_dicom_series",
    "write_rtstruct",
    "write_seg",
]

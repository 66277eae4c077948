"""DICOM SEG in and out: labels from the PACS onto an image grid, predictions back as SEG.

Encoding and decoding are highdicom's; this package decides geometry (frames placed by
position onto the reference grid), label names (the structure vocabulary) and checks (same
Frame of Reference, same series, one-line errors). dcmqi and dciodvfy check it in the tests.

* :func:`read_seg` - a SEG file onto a reference :class:`~medai_lab.io.volume.Volume`
* :func:`seg_references` - what a SEG refers to, from its header only
* :func:`write_seg` - a label map on a DICOM series' grid to a SEG file
"""

from __future__ import annotations

from medai_lab.io.seg_read import read_seg, seg_references
from medai_lab.io.seg_write import GENERIC_CODE, Algorithm, write_seg

__all__ = ["GENERIC_CODE", "Algorithm", "read_seg", "seg_references", "write_seg"]

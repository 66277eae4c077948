"""DICOM series to NIfTI, the ``medai-lab convert`` command's engine."""

from __future__ import annotations

import os
from pathlib import Path

from medai_lab.errors import DicomError
from medai_lab.io.loader import Source, load_series
from medai_lab.io.nifti import save_nifti
from medai_lab.io.volume import Volume


def convert_dicom_to_nifti(
    source: Source,
    out: str | os.PathLike[str],
    *,
    series: int | str | None = None,
    allow_gaps: bool = False,
    allow_single_slice: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
) -> Volume:
    """Load one series and write it as NIfTI (atomically). Returns the volume written."""
    out_path = Path(out)
    if out_path.exists() and not overwrite:
        raise DicomError(f"output exists: {out_path} (use --overwrite)")
    volume = load_series(source, series=series, allow_gaps=allow_gaps, workers=workers)
    if volume.shape[2] == 1 and not allow_single_slice:
        raise DicomError(
            "only one slice found: not a volume (use --allow-single-slice to write it anyway)"
        )
    save_nifti(volume, out_path)
    return volume

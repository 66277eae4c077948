"""DICOM series to NIfTI, the ``medai-lab convert`` command's engine.

When RTSTRUCT or SEG objects in the same folder label the converted series, their label map is
written beside the image (``<name>_labels.nii.gz`` + ``<name>_labels.json`` with the names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from medai_lab import atomic
from medai_lab.errors import DicomError
from medai_lab.io.discovery import discover_series
from medai_lab.io.label_objects import merge_label_maps, read_labels
from medai_lab.io.loader import Source, load_series, pick_series
from medai_lab.io.nifti import save_nifti
from medai_lab.io.volume import Volume


def labels_path_for(image_out: Path) -> Path:
    """``x.nii.gz`` -> ``x_labels.nii.gz`` (same suffix as the image)."""
    name = image_out.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return image_out.with_name(name[: -len(suffix)] + "_labels" + suffix)
    return image_out.with_name(name + "_labels.nii.gz")


def convert_dicom_to_nifti(
    source: Source,
    out: str | os.PathLike[str],
    *,
    series: int | str | None = None,
    allow_gaps: bool = False,
    allow_single_slice: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    labels: bool = True,
    task_labels: Mapping[int, str] | None = None,
) -> Volume:
    """Load one series and write it as NIfTI (atomically). Returns the volume written.

    With ``labels`` (default) the RTSTRUCT/SEG objects that reference the series are read onto
    its grid and written next to it; ``volume.meta["labels_written"]`` names that file.
    ``task_labels`` (value -> name, e.g. ``{1: "liver", 2: "tumour"}``) maps ROI names through
    the structure synonyms; without it every ROI/segment gets its own value.
    """
    out_path = Path(out)
    if out_path.exists() and not overwrite:
        raise DicomError(f"output exists: {out_path} (use --overwrite)")
    report = discover_series(source, workers=workers)
    info = pick_series(report, series)
    objects = report.labels_for(report.series.index(info)) if labels else []
    lab_path = labels_path_for(out_path)
    if objects and lab_path.exists() and not overwrite:
        raise DicomError(f"output exists: {lab_path} (use --overwrite)")
    volume = load_series(info, allow_gaps=allow_gaps, workers=workers)
    if volume.shape[2] == 1 and not allow_single_slice:
        raise DicomError(
            "only one slice found: not a volume (use --allow-single-slice to write it anyway)"
        )
    # Labels first: a label object that cannot be read stops the command before any output.
    label_map = (
        merge_label_maps([read_labels(o, volume, labels=task_labels) for o in objects], task_labels)
        if objects
        else None
    )
    save_nifti(volume, out_path)
    if label_map is not None:
        save_nifti(label_map.volume, lab_path)
        names = {"labels": {str(v): n for v, n in sorted(label_map.labels.items())}}
        names |= {"unmapped": label_map.unmapped, "empty": label_map.empty}
        sidecar = lab_path.with_name(lab_path.name.split(".nii")[0] + ".json")
        atomic.write_text(sidecar, json.dumps(names, indent=2) + "\n")
        volume.meta["labels_written"] = str(lab_path)
        volume.meta["label_summary"] = label_map.describe()
        volume.meta.setdefault("warnings", []).extend(label_map.warnings)
    return volume

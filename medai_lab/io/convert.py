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
from medai_lab.io.fourd import SPLITS
from medai_lab.io.label_objects import merge_label_maps, read_labels
from medai_lab.io.loader import Source, load_series, pick_series
from medai_lab.io.nifti import save_nifti
from medai_lab.io.sidecar import stem, write_companions
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
    split: str | None = None,
    sidecar: bool | None = None,
    philips_scaling: str = "float",
    suv: str | None = None,
) -> Volume:
    """Load one series and write it as NIfTI (atomically). Returns the volume written.

    A 4-D series (slices sharing positions) becomes one 4-D NIfTI with a BIDS-style JSON
    sidecar, plus ``.bval``/``.bvec`` for diffusion; ``split`` (``echo``, ``phase``, ``time``,
    ``diffusion`` or ``component``, the name of the series' 4th axis) writes one 3-D NIfTI per
    volume instead, ``<name>_<split>-<n>.nii.gz`` (n from 1), each with its own sidecar.
    ``sidecar``: ``None`` writes it for 4-D series, SUV and vendor-scaled images only.
    ``suv`` (``bw``, ``lbm`` or ``bsa``) converts PET to SUV (see :mod:`medai_lab.io.suv`).
    ``volume.meta["written"]`` lists every file written.

    With ``labels`` (default) the RTSTRUCT/SEG objects that reference the series are read onto
    its grid and written next to it; ``volume.meta["labels_written"]`` names that file.
    ``task_labels`` (value -> name, e.g. ``{1: "liver", 2: "tumour"}``) maps ROI names through
    the structure synonyms; without it every ROI/segment gets its own value.
    """
    out_path = Path(out)
    if split is not None and split not in SPLITS:
        raise DicomError(f"--split must be one of {', '.join(SPLITS)}: {split}")
    if out_path.exists() and not overwrite and split is None:
        raise DicomError(f"output exists: {out_path} (use --overwrite)")
    report = discover_series(source, workers=workers)
    info = pick_series(report, series)
    objects = report.labels_for(report.series.index(info)) if labels else []
    lab_path = labels_path_for(out_path)
    if objects and lab_path.exists() and not overwrite:
        raise DicomError(f"output exists: {lab_path} (use --overwrite)")
    volume = load_series(
        info, allow_gaps=allow_gaps, workers=workers, philips_scaling=philips_scaling
    )
    if suv is not None:
        from medai_lab.io.suv import apply_suv

        volume = apply_suv(volume, info, method=suv)
    if volume.shape[2] == 1 and not allow_single_slice:
        raise DicomError(
            "only one slice found: not a volume (use --allow-single-slice to write it anyway)"
        )
    targets = _targets(volume, out_path, split, overwrite)
    grid = volume.volume(0)
    # Labels first: a label object that cannot be read stops the command before any output.
    label_map = (
        merge_label_maps([read_labels(o, grid, labels=task_labels) for o in objects], task_labels)
        if objects
        else None
    )
    auto = volume.axis4 is not None or bool(volume.meta.get("scaling") or volume.meta.get("suv"))
    written: list[Path] = []
    try:
        for part, path in targets:
            # Companions first, the image last: a NIfTI on disk means its set is complete.
            written += write_companions(part, path, sidecar=auto if sidecar is None else sidecar)
            written.append(save_nifti(part, path))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    volume.meta["written"] = [str(p) for p in written]
    if label_map is not None:
        save_nifti(label_map.volume, lab_path)
        names = {"labels": {str(v): n for v, n in sorted(label_map.labels.items())}}
        names |= {"unmapped": label_map.unmapped, "empty": label_map.empty}
        side = lab_path.with_name(lab_path.name.split(".nii")[0] + ".json")
        atomic.write_text(side, json.dumps(names, indent=2) + "\n")
        volume.meta["labels_written"] = str(lab_path)
        volume.meta["label_summary"] = label_map.describe()
        volume.meta.setdefault("warnings", []).extend(label_map.warnings)
    return volume


def _targets(
    volume: Volume, out: Path, split: str | None, overwrite: bool
) -> list[tuple[Volume, Path]]:
    """(image, path) pairs to write: the whole volume, or one 3-D volume per split step."""
    if split is None:
        return [(volume, out)]
    axis = volume.axis4
    if axis is None:
        raise DicomError(f"--split {split}: this series is 3-D (no slices share a position)")
    if split not in axis["name"].split("+"):
        raise DicomError(
            f"--split {split}: this series varies by {axis['name']} ({axis['attribute']}), "
            f"not {split}"
        )
    base = stem(out)
    suffix = out.name[len(base.name) :]
    pairs = [
        (volume.volume(t), base.with_name(f"{base.name}_{split}-{t + 1}{suffix}"))
        for t in range(volume.n_volumes)
    ]
    existing = [p for _, p in pairs if p.exists()]
    if existing and not overwrite:
        raise DicomError(f"output exists: {existing[0]} (use --overwrite)")
    return pairs

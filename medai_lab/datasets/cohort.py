"""Training cohorts from DICOM: image series + their RTSTRUCT/SEG labels -> MSD layout.

``OUT/imagesTr/<task>_NNN.nii.gz`` and ``OUT/labelsTr/<task>_NNN.nii.gz`` for every series that
a label object references, ``OUT/imagesTs/`` for series without labels, ``OUT/dataset.json``
(MSD) and ``OUT/manifest.csv`` (one row per series: what was used, what was not, and why).
Case ids are indices, never anything from the headers. With ``deid=True`` the input is first
de-identified (PS3.15 + pixel check) into ``OUT/dicom/``, and everything after reads from there,
so the cohort holds the de-identified UIDs that a SEG written later will reference.
The folder appears complete or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab import atomic
from medai_lab.errors import MedaiError

MANIFEST_COLUMNS = [
    "case",
    "split",
    "status",
    "modality",
    "shape",
    "spacing_mm",
    "label_objects",
    "labels_found",
    "unmapped",
    "empty",
    "note",
]


@dataclass
class CohortReport:
    """What :func:`build_cohort` wrote."""

    out: Path
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def training(self) -> int:
        return sum(r["split"] == "training" and r["status"] == "written" for r in self.rows)

    @property
    def test(self) -> int:
        return sum(r["split"] == "test" and r["status"] == "written" for r in self.rows)

    @property
    def skipped(self) -> list[dict[str, str]]:
        return [r for r in self.rows if r["status"] != "written"]

    def describe(self) -> str:
        lines = [
            f"cohort in {self.out}: {self.training} labelled case(s) (imagesTr/labelsTr), "
            f"{self.test} unlabelled (imagesTs)"
        ]
        lines += [f"  skipped {r['case']}: {r['note']}" for r in self.skipped]
        unmapped = sorted({u for r in self.rows for u in r["unmapped"].split("; ") if u})
        if unmapped:
            lines.append(f"  ROI/segment names not used for any label: {', '.join(unmapped)}")
        lines.append(f"  manifest: {self.out / 'manifest.csv'}")
        return "\n".join(lines)


def build_cohort(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    task: str,
    labels: Mapping[int, str],
    modality: str | None = None,
    synonyms: Mapping[str, str] | None = None,
    deid: bool = False,
    deid_options: Iterable[str] = ("clean-descriptors",),
    key_file: str | os.PathLike[str] | None = None,
    include_unlabelled: bool = True,
    workers: int | None = None,
    progress: bool = True,
    frames: Any = "all",
) -> CohortReport:
    """Build an MSD-layout training cohort from a DICOM folder (see the module docstring).

    Parameters
    ----------
    labels
        Task labels, value -> name (``{1: "lung", 2: "nodule"}``): ROI/segment names map onto
        them through :mod:`medai_lab.io.structures` (plus ``synonyms``).
    modality
        Keep only image series of this modality (others are listed as skipped).
    deid_options
        PS3.15 options for ``deid=True``. The Basic Profile empties ROI names (Table E.1-1:
        ``Z``), so the default keeps them through the Clean Descriptors Option instead:
        cleaned of identifiers, still naming the structure.
    frames
        4-D series (cine, multi-phase, multi-echo ...) are written whole, as 4-D NIfTI with
        their sidecar JSON; ``frames`` (``"all"``, an index or ``"axis=value"``, see
        :mod:`medai_lab.datasets.frames`) says which frames training uses as channels and is
        recorded in ``dataset.json`` (``"frames"``).
    """
    from medai_lab.datasets.frames import parse_frames
    from medai_lab.io.discovery import discover_series

    parse_frames(frames)  # a bad choice fails before any work
    out_dir = Path(out)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MedaiError(f"output exists and is not empty: {out_dir}")
    src = Path(source)
    if not src.is_dir():
        raise MedaiError(f"no such folder: {src}")
    report = CohortReport(out=out_dir)
    with atomic.atomic_dir(out_dir) as tmp:
        deid_profile = None
        if deid:
            from medai_lab.deid import deidentify_tree

            deid_report = deidentify_tree(
                src,
                tmp / "dicom",
                options=tuple(deid_options),
                key_file=key_file,
                workers=workers,
                progress=progress,
            )
            src = tmp / "dicom"
            deid_profile = "PS3.15 Basic Application Level Confidentiality Profile" + (
                f" + {', '.join(deid_options)}" if deid_options else ""
            )
            if not deid_report.written:
                raise MedaiError("de-identification wrote no files; see dicom/deid_audit.csv")
        found = discover_series(src, workers=workers)
        report.rows = _write_cases(
            found, tmp, task, labels, modality, synonyms, include_unlabelled, progress
        )
        if not report.training:
            why = "; ".join(sorted({r["note"] for r in report.skipped})) or "no label objects"
            raise MedaiError(f"no labelled case for task {task} in {src.name or src}: {why}")
        _write_dataset_json(tmp, task, labels, report.rows, modality, deid_profile)
        if any(r["shape"].count("x") == 3 for r in report.rows if r["split"] == "training"):
            from medai_lab.datasets.frames import record_frames

            record_frames(tmp, frames)  # 4-D images: which frames are the channels
        atomic.write_text(tmp / "manifest.csv", _csv(report.rows))
    return report


def _write_cases(
    found: Any,
    tmp: Path,
    task: str,
    labels: Mapping[int, str],
    modality: str | None,
    synonyms: Mapping[str, str] | None,
    include_unlabelled: bool,
    progress: bool,
) -> list[dict[str, str]]:
    from medai_lab.io.label_objects import merge_label_maps, read_labels
    from medai_lab.io.loader import load_series
    from medai_lab.io.nifti import save_nifti
    from medai_lab.io.sidecar import write_companions
    from medai_lab.io.volume import Volume
    from medai_lab.progress import progress_bar

    rows: list[dict[str, str]] = []
    written = 0
    bar = progress_bar(total=len(found.series), desc="cohort", unit="series", enabled=progress)
    for index, series in enumerate(found.series):
        objects = found.labels_for(index)
        split = "training" if objects else "test"
        case = f"{task}_{written:03d}"
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(case=case, split=split, modality=series.modality)
        row["label_objects"] = " + ".join(o.kind for o in objects)
        bar.update(1)
        if modality and series.modality != modality:
            note = f"modality {series.modality or '?'}, task wants {modality}"
            rows.append(_skip(row, f"series {index}", note))
            continue
        if not objects and not include_unlabelled:
            continue
        try:
            volume = load_series(series)
            # Labels lie on the 3-D grid; a 4-D image's frames share it.
            grid = volume if volume.axis4 is None else Volume(volume.array[..., 0], volume.affine)
            maps = [read_labels(o, grid, labels=labels, synonyms=synonyms) for o in objects]
        except MedaiError as err:
            rows.append(_skip(row, f"series {index}", str(err)))
            continue
        row["shape"] = "x".join(str(n) for n in volume.shape)
        row["spacing_mm"] = "x".join(f"{s:.3g}" for s in volume.spacing)
        folder = "imagesTr" if objects else "imagesTs"
        save_nifti(volume, tmp / folder / f"{case}.nii.gz")
        if volume.axis4 is not None:  # the 4th axis values, for choosing frames by value
            write_companions(volume, tmp / folder / f"{case}.nii.gz")
        if objects:
            label_map = merge_label_maps(maps, labels)
            found_labels = {
                labels[v]: int(np.count_nonzero(label_map.volume.array == v)) for v in labels
            }
            row["labels_found"] = "; ".join(f"{n}={c}" for n, c in found_labels.items())
            row["unmapped"] = "; ".join(label_map.unmapped)
            row["empty"] = "; ".join(label_map.empty)
            row["note"] = " | ".join(label_map.warnings)
            out_array = label_map.volume.array.astype(np.uint8 if max(labels) < 256 else np.uint16)
            save_nifti(
                Volume(out_array, volume.affine, {"description": f"{task} labels"}),
                tmp / "labelsTr" / f"{case}.nii.gz",
            )
        written += 1
        row["status"] = "written"
        rows.append(row)
    bar.close()
    return rows


def _skip(row: dict[str, str], case: str, note: str) -> dict[str, str]:
    row.update(case=case, status="skipped", note=note)
    return row


def _write_dataset_json(
    tmp: Path,
    task: str,
    labels: Mapping[int, str],
    rows: list[dict[str, str]],
    modality: str | None,
    deid_profile: str | None,
) -> None:
    written = [r for r in rows if r["status"] == "written"]
    training = [
        {"image": f"./imagesTr/{r['case']}.nii.gz", "label": f"./labelsTr/{r['case']}.nii.gz"}
        for r in written
        if r["split"] == "training"
    ]
    test = [f"./imagesTs/{r['case']}.nii.gz" for r in written if r["split"] == "test"]
    modalities = sorted({r["modality"] for r in written}) or [modality or "CT"]
    info: dict[str, Any] = {
        "name": f"MedAI-Lab-Cohort-{task.capitalize()}",
        "description": f"{task} cohort built by medai-lab cohort from DICOM images and "
        "their RTSTRUCT/SEG labels",
        "tensorImageSize": "3D",
        "modality": {"0": modality or modalities[0]},
        "labels": {"0": "background", **{str(k): v for k, v in sorted(labels.items())}},
        "numTraining": len(training),
        "numTest": len(test),
        "training": training,
        "test": test,
    }
    if deid_profile:
        info["deid_profile"] = deid_profile
    atomic.write_text(tmp / "dataset.json", json.dumps(info, indent=2) + "\n")


def _csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()

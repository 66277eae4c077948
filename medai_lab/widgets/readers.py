"""Several readers label one image: each reader's labels are their own layer, compared.

A reading is saved beside the image, one pair of files per reader::

    <image folder>/<image name>.readers/<author>.nii.gz   labels, on the image's grid
    <image folder>/<image name>.readers/<author>.json     {"author", "time", "labels"}

``author`` is the hub user (``$JUPYTERHUB_USER``) or the login name; a reader saving again
replaces their own layer, never another's. :func:`compare_readers` gives Dice and volumes for
every label and pair of readers; :func:`disagreement_map` is a label map ``view(image,
labels=...)`` shows (``1`` every reader gave the voxel the same label, ``2`` readers differ).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab import atomic
from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

__all__ = [
    "DISAGREEMENT_NAMES",
    "Reading",
    "compare_readers",
    "current_reader",
    "disagreement_map",
    "load_readings",
    "readers_folder",
    "save_reading",
]

DISAGREEMENT_NAMES = {1: "agreed", 2: "disputed"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NIFTI = (".nii.gz", ".nii")


@dataclass(frozen=True)
class Reading:
    """One reader's labels: ``author``, ``time`` (ISO 8601, UTC) and the label ``volume``."""

    author: str
    time: str
    volume: Volume
    names: dict[int, str]


def current_reader() -> str:
    """The hub user (``$JUPYTERHUB_USER``), else the login name."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def readers_folder(image: str | os.PathLike[str]) -> Path:
    """Where the readings of ``image`` (a NIfTI file or DICOM folder) are kept."""
    path = Path(image)
    name = next((path.name[: -len(e)] for e in _NIFTI if path.name.endswith(e)), path.name)
    return path.parent / f"{name}.readers"


def save_reading(
    labels: Any,
    image: str | os.PathLike[str],
    *,
    author: str | None = None,
    names: dict[int, str] | None = None,
) -> Path:
    """Save ``labels`` as this reader's layer of ``image``; returns the NIfTI path.

    ``labels`` is a label :class:`Volume` (``viewer.label_volume()``) or a viewer itself.
    """
    if hasattr(labels, "label_volume"):
        names = names or {d["value"]: d["name"] for d in labels.scene.dictionary()}
        labels = labels.label_volume()
    if not isinstance(labels, Volume) or labels.array.ndim != 3:
        raise MedaiError("save_reading needs a 3-D label Volume or a viewer")
    who = _safe_author(author or current_reader())
    folder = readers_folder(image)
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    out = folder / f"{who}.nii.gz"
    from medai_lab.io.nifti import save_nifti

    save_nifti(Volume(labels.array, labels.affine, {}), out)
    info = {"author": who, "time": when, "labels": {str(k): v for k, v in (names or {}).items()}}
    atomic.write_text(folder / f"{who}.json", json.dumps(info, indent=2) + "\n")
    return out


def load_readings(image: str | os.PathLike[str]) -> list[Reading]:
    """Every reader's layer of ``image``, by author."""
    from medai_lab.io.nifti import load_nifti

    folder = readers_folder(image)
    readings = []
    for path in sorted(folder.glob("*.nii.gz")) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue  # a write in progress
        side = path.with_name(path.name[: -len(".nii.gz")] + ".json")
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MedaiError(
                f"{side.name}: no readable reader record ({type(exc).__name__})"
            ) from None
        names = {int(k): str(v) for k, v in (info.get("labels") or {}).items()}
        readings.append(Reading(str(info["author"]), str(info["time"]), load_nifti(path), names))
    return readings


def compare_readers(readings: list[Reading], as_frame: bool = True) -> Any:
    """Per label and pair of readers: Dice, both volumes (mL) and their difference.

    Columns: ``value``, ``name``, ``reader_a``, ``reader_b``, ``dice``, ``volume_a_ml``,
    ``volume_b_ml``, ``difference_ml`` (b - a) and ``difference_pct`` (of the mean volume).
    A pandas DataFrame, or a list of dicts with ``as_frame=False``.
    """
    from medai_lab.evaluation.metrics import dice_score

    arrays = _same_grid(readings)
    voxel_ml = abs(float(np.linalg.det(readings[0].volume.affine[:3, :3]))) / 1000.0
    names: dict[int, str] = {}
    for r in readings:
        names.update(r.names)
    values = sorted({int(v) for a in arrays for v in np.unique(a)} - {0})
    rows = []
    for v in values:
        masks = [a == v for a in arrays]
        for i, j in combinations(range(len(readings)), 2):
            va, vb = (float(np.count_nonzero(masks[k])) * voxel_ml for k in (i, j))
            mean = (va + vb) / 2
            rows.append({
                "value": v, "name": names.get(v, f"label {v}"),
                "reader_a": readings[i].author, "reader_b": readings[j].author,
                "dice": dice_score(masks[i], masks[j]), "volume_a_ml": va, "volume_b_ml": vb,
                "difference_ml": vb - va,
                "difference_pct": 100.0 * (vb - va) / mean if mean else 0.0,
            })  # fmt: skip
    if not as_frame:
        return rows
    import pandas as pd

    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


def disagreement_map(readings: list[Reading]) -> Volume:
    """``1`` where all readers gave the same non-zero label, ``2`` where they differ.

    Show it with ``view(image, labels=m, label_names=DISAGREEMENT_NAMES)``.
    """
    arrays = _same_grid(readings)
    stack = np.stack(arrays)
    labelled = (stack != 0).any(axis=0)
    same = (stack == stack[0]).all(axis=0)
    out = np.zeros(stack.shape[1:], np.uint8)
    out[labelled & same] = 1
    out[labelled & ~same] = 2
    return Volume(out, readings[0].volume.affine.copy(), {"kind": "labels"})


def _same_grid(readings: list[Reading]) -> list[np.ndarray]:
    """The readers' arrays; an error unless there are two or more on one grid."""
    from medai_lab.evaluation.report import affine_difference_mm

    if len(readings) < 2:
        raise MedaiError(f"comparing readers needs two or more readings, got {len(readings)}")
    first = readings[0].volume
    for r in readings[1:]:
        if r.volume.array.shape != first.array.shape:
            raise MedaiError(f"reader {r.author}'s labels {r.volume.array.shape} are not on the "
                             f"grid of {readings[0].author}'s {first.array.shape}")  # fmt: skip
        if affine_difference_mm(r.volume.affine, first.affine, first.array.shape) > 0.01:
            raise MedaiError(f"reader {r.author}'s labels lie elsewhere in space than "
                             f"{readings[0].author}'s")  # fmt: skip
    return [np.asarray(r.volume.array) for r in readings]


def _safe_author(author: str) -> str:
    """A file-name-safe form of a user name (no path separators, no leading dot)."""
    safe = _UNSAFE.sub("_", str(author)).strip("._")
    if not safe:
        raise MedaiError(f"reader name {author!r} has no letters or digits to name a file")
    return safe

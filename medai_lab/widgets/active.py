"""Active learning: corrected labels join a training dataset, the last run is tuned on it.

:func:`append_case` adds an image and its labels to an MSD folder (``imagesTr/``,
``labelsTr/``, ``dataset.json``) and its ``manifest.csv`` (the columns ``medai-lab cohort``
writes). Case names are ``<task>_NNN``, never anything from the image; every file is written
under a temporary name and renamed, and ``dataset.json`` lists a case only once both of its
files are complete. :func:`fine_tune` continues the task's last run (``medai-lab train
--resume``) for a few more epochs on that dataset.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab import atomic
from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

__all__ = ["append_case", "epochs_done", "fine_tune"]

_ID = re.compile(r"^(?P<prefix>[A-Za-z0-9]+)_(?P<n>\d+)\.nii(\.gz)?$")


def append_case(
    dataset: str | os.PathLike[str],
    source: Any,
    labels: Volume | None = None,
    *,
    task: str = "case",
    names: dict[int, str] | None = None,
    note: str = "corrected in the viewer",
) -> str:
    """Add one training case to the MSD folder ``dataset`` (created when missing).

    Parameters
    ----------
    source
        A viewer (its image and edited labels) or the image :class:`Volume`.
    labels
        The label :class:`Volume` on the image's grid (not with a viewer).
    task
        Name prefix of new cases when the dataset has none yet (``liver`` -> ``liver_000``).
    names
        Label names for a new ``dataset.json`` (default: the viewer's dictionary).

    Returns
    -------
    str
        The new case's id.
    """
    image, labels, names = _image_and_labels(source, labels, names)
    if image.array.shape[:3] != labels.array.shape:
        raise MedaiError(f"labels {labels.array.shape} are not on the image grid {image.shape}")
    if not re.fullmatch(r"[A-Za-z0-9]+", task):
        raise MedaiError(f"task prefix {task!r} must be letters and digits")
    from medai_lab.io.nifti import save_nifti

    root = Path(dataset)
    with _locked(root):
        info = _read_info(root, task, names)
        case = _next_case(root, info, task)
        save_nifti(image, root / "imagesTr" / f"{case}.nii.gz")
        save_nifti(Volume(labels.array.astype(_label_dtype(labels.array)), labels.affine, {}),
                   root / "labelsTr" / f"{case}.nii.gz")  # fmt: skip
        info["training"].append(
            {"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"}
        )
        info["numTraining"] = len(info["training"])
        _append_manifest(root, case, image, labels, info, note)
        atomic.write_text(root / "dataset.json", json.dumps(info, indent=2) + "\n")
    return case


def fine_tune(
    task: str,
    dataset: str | os.PathLike[str],
    *,
    preset: str = "cpu",
    out_dir: str | os.PathLike[str] = "runs",
    epochs: int = 1,
    overrides: Sequence[str] = (),
    **train_kwargs: Any,
) -> Any:
    """Continue ``out_dir/<task>``'s last run for ``epochs`` more epochs on ``dataset``.

    ``preset`` and ``overrides`` must be those of the run (``train(..., resume=True)`` checks
    nothing else changed but the data). Returns :class:`medai_lab.tasks.TrainResult`.
    """
    if int(epochs) < 1:
        raise MedaiError(f"epochs must be 1 or more, got {epochs}")
    last = Path(out_dir) / task / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise MedaiError(f"no run to fine-tune: {last} does not exist (train {task} first)")
    import torch

    from medai_lab.tasks import train

    done = epochs_done(torch.load(str(last), map_location="cpu", weights_only=False))
    more = [*overrides, f"trainer.max_epochs={done + int(epochs)}"]
    return train(task, preset, data=dataset, overrides=more, out_dir=out_dir, resume=True,
                 **train_kwargs)  # fmt: skip


def epochs_done(state: dict[str, Any]) -> int:
    """Epochs a Lightning checkpoint has trained (its ``epoch`` key is saved before or after
    the epoch counter moves, depending on when the checkpoint was written)."""
    try:
        return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(state.get("epoch", -1)) + 1


# --- internals -------------------------------------------------------------------------------


def _image_and_labels(
    source: Any, labels: Volume | None, names: dict[int, str] | None
) -> tuple[Volume, Volume, dict[int, str]]:
    if hasattr(source, "label_volume"):  # a viewer: its image and its edited labels
        if labels is not None:
            raise MedaiError("give either a viewer or an image with its labels")
        names = names or {d["value"]: d["name"] for d in source.scene.dictionary()}
        return source.scene.image, source.label_volume(), names
    if not isinstance(source, Volume) or not isinstance(labels, Volume):
        raise MedaiError("append_case needs a viewer, or an image Volume and a label Volume")
    return source, labels, dict(names or {})


def _label_dtype(arr: np.ndarray) -> type:
    if arr.size and int(arr.min()) < 0:
        raise MedaiError("labels hold negative values")
    return np.uint8 if int(arr.max(initial=0)) < 256 else np.uint16


def _read_info(root: Path, task: str, names: dict[int, str]) -> dict[str, Any]:
    path = root / "dataset.json"
    if not path.is_file():
        if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise MedaiError(f"{root} is not an MSD dataset (no dataset.json) and not empty")
        return {
            "name": f"MedAI-Lab-{task.capitalize()}-Corrections",
            "description": "cases labelled and corrected in the MedAI Lab viewer",
            "tensorImageSize": "3D",
            "modality": {"0": "CT"},
            "labels": {"0": "background", **{str(k): v for k, v in sorted(names.items())}},
            "numTraining": 0, "numTest": 0, "training": [], "test": [],
        }  # fmt: skip
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(info.get("training"), list):
            raise ValueError("no training list")
    except (ValueError, AttributeError) as exc:
        raise MedaiError(f"{path} is not an MSD dataset.json: {exc}") from None
    return info


def _next_case(root: Path, info: dict[str, Any], task: str) -> str:
    """``<prefix>_NNN`` after every case listed or on disk (a case in progress included)."""
    seen = [Path(str(t.get("image", ""))).name for t in info["training"] if isinstance(t, dict)]
    for sub in ("imagesTr", "labelsTr"):
        if (root / sub).is_dir():
            seen += [p.name for p in (root / sub).iterdir()]
    found = [m for s in seen if (m := _ID.match(s))]
    prefix = found[0]["prefix"] if found else task
    n = max((int(m["n"]) + 1 for m in found if m["prefix"] == prefix), default=0)
    return f"{prefix}_{n:03d}"


def _append_manifest(
    root: Path, case: str, image: Volume, labels: Volume, info: dict[str, Any], note: str
) -> None:
    from medai_lab.datasets.cohort import MANIFEST_COLUMNS

    path = root / "manifest.csv"
    rows = []
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    counts = np.bincount(np.asarray(labels.array).ravel().astype(np.int64))
    names = {int(k): v for k, v in (info.get("labels") or {}).items()}
    present = [int(v) for v in np.flatnonzero(counts) if v]
    found = "; ".join(f"{names.get(v, v)}={counts[v]}" for v in present)
    rows.append({
        "case": case, "split": "training", "status": "written",
        "modality": (info.get("modality") or {}).get("0", "CT"),
        "shape": "x".join(str(n) for n in image.shape), "label_objects": "viewer",
        "spacing_mm": "x".join(f"{s:.3g}" for s in image.spacing),
        "labels_found": found, "unmapped": "", "empty": "", "note": note,
    })  # fmt: skip
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n",
                            extrasaction="ignore")  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer at a time per dataset (two readers appending on one hub)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".append.lock", "a") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: a single user's laptop
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

"""The task catalogue: every segmentation task the lab knows, one YAML file per task.

Tasks come from ``medai_lab/tasks/configs/task/*.yaml`` (built in) and from the folders named in
``$MEDAI_TASKS_DIR`` (``os.pathsep``-separated; a user file with a built-in's name replaces it).
Adding a task is one YAML file; the CLI, the training config, the phantom generator and the
challenge spec all ask this module, so nothing else needs an edit::

    name: spleen                 # must equal the file name
    modality: CT
    labels: {1: spleen}          # label value -> name (0 is background)
    intensity: {mode: ct_window, a_min: -150.0, a_max: 250.0}
    foreground_threshold: -500.0
    spacing: [1.5, 1.5, 2.5]
    patch_size: [96, 96, 64]
    keep_largest: [1]
    phantom:                     # optional: how the offline phantom generator draws it
      scene: liver               # the scene drawn (lung | liver | heart)
      labels: {1: spleen}        # task label value -> drawn structure

This module sits at the bottom of the layers (errors + pyyaml only), so datasets, tasks,
challenge and the CLI can all use it. Listing names reads no file; :func:`get` parses one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError

__all__ = [
    "BUILTIN_DIR",
    "ENV",
    "CatalogueError",
    "PhantomRecipe",
    "TaskInfo",
    "find",
    "get",
    "names",
    "task_dirs",
]

ENV = "MEDAI_TASKS_DIR"
BUILTIN_DIR = Path(__file__).resolve().parent / "tasks" / "configs" / "task"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_REQUIRED = ("name", "modality", "labels", "intensity", "spacing", "patch_size")


class CatalogueError(MedaiError):
    """A task is unknown or its YAML file is not valid."""


@dataclass(frozen=True)
class PhantomRecipe:
    """How the offline phantom generator draws a task: a scene and the structures labelled."""

    scene: str
    labels: tuple[tuple[int, str], ...]  # task label value -> structure drawn in the scene

    def label_map(self) -> dict[int, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class TaskInfo:
    """One catalogue entry: what every layer needs to know about a task without torch."""

    name: str
    path: Path
    modality: str
    labels: tuple[tuple[int, str], ...]  # foreground label value -> name, ascending
    phantom: PhantomRecipe | None
    msd_task: str | None

    def label_map(self, background: bool = False) -> dict[int, str]:
        """``{1: "liver", 2: "tumour"}`` (with ``{0: "background"}`` first when asked)."""
        return {**({0: "background"} if background else {}), **dict(self.labels)}


def task_dirs() -> list[Path]:
    """Folders searched, built-in first; later folders win on equal names."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def names() -> tuple[str, ...]:
    """Every task name, sorted (file names only: nothing is parsed)."""
    return tuple(sorted(_files()))


def find(name: str) -> Path | None:
    """The YAML file of task ``name``, or None when the catalogue has no such task."""
    return _files().get(name) if isinstance(name, str) else None


def get(name: str) -> TaskInfo:
    """The validated catalogue entry of ``name``; :class:`CatalogueError` with one line if not."""
    path = find(name)
    if path is None:
        raise CatalogueError(f"unknown task {name!r}; choose one of: {', '.join(names())}")
    return _parse(path, load_yaml(path))


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; :class:`CatalogueError` naming the file otherwise."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read task file {path.name}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise CatalogueError(f"task file {path.name} must hold a mapping")
    return data


# --- internals -------------------------------------------------------------------------------


def _files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in task_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                if _NAME.match(path.stem):
                    found[path.stem] = path
    return found


def _parse(path: Path, raw: dict[str, Any]) -> TaskInfo:
    where = f"task file {path.name}"
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")
    if raw["name"] != path.stem:
        raise CatalogueError(f"{where}: name {raw['name']!r} must equal the file name")
    if not isinstance(raw["modality"], str) or not raw["modality"]:
        raise CatalogueError(f"{where}: modality must be a text such as CT or MR")
    labels = _label_pairs(raw["labels"], f"{where}: labels")
    if not labels:
        raise CatalogueError(f"{where}: labels must name at least one foreground label")
    phantom = None
    if raw.get("phantom") is not None:
        ph = raw["phantom"]
        if not isinstance(ph, dict) or not isinstance(ph.get("scene"), str):
            raise CatalogueError(f"{where}: phantom needs a scene (lung, liver or heart)")
        drawn = _label_pairs(ph.get("labels"), f"{where}: phantom.labels")
        if [v for v, _ in drawn] != [v for v, _ in labels]:
            raise CatalogueError(f"{where}: phantom.labels must draw every label of the task")
        phantom = PhantomRecipe(ph["scene"], drawn)
    msd = raw.get("msd_task")
    return TaskInfo(raw["name"], path, raw["modality"], labels, phantom, msd and str(msd))


def _label_pairs(raw: Any, where: str) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where} must map label values to names")
    pairs = []
    for key, value in raw.items():
        try:
            number = int(key)
        except (TypeError, ValueError):
            raise CatalogueError(f"{where}: keys must be label values, got {key!r}") from None
        if not 1 <= number <= 255 or not isinstance(value, str) or not value:
            raise CatalogueError(f"{where}: {key!r}: values 1-255 with a name")
        pairs.append((number, value))
    return tuple(sorted(pairs))

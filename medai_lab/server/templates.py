"""The template notebooks behind the launcher cards: where they are, copying them safely."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ENV_TEMPLATES = "MEDAI_LAB_TEMPLATES"
MAX_COPIES = 10_000

TEMPLATES: list[dict[str, str]] = [
    {"id": "lung", "title": "Lung segmentation", "icon": "lung", "notebook": "lung.ipynb",
     "description": "Lungs and nodules on CT: data, viewer, training, evaluation, MLflow"},
    {"id": "liver", "title": "Liver segmentation", "icon": "liver", "notebook": "liver.ipynb",
     "description": "Liver and tumours on CT: data, viewer, training, evaluation, MLflow"},
    {"id": "heart", "title": "Heart segmentation", "icon": "heart", "notebook": "heart.ipynb",
     "description": "Left atrium on CT: data, viewer, training, evaluation, MLflow"},
    {"id": "pacs_deid", "title": "PACS & de-identification", "icon": "pacs",
     "notebook": "pacs_deid.ipynb",
     "description": "Query a PACS, pull a study de-identified, look at it"},
    {"id": "hackathon", "title": "Hackathon", "icon": "trophy", "notebook": "hackathon.ipynb",
     "description": "Train, submit, and see the leaderboard on hidden data"},
]  # fmt: skip


def template_dirs() -> list[Path]:
    """Folders searched for template notebooks, first match wins.

    ``$MEDAI_LAB_TEMPLATES``; ``medai_lab/notebooks`` (wheel);
    ``<prefix>/share/medai-lab/notebooks``; the checkout's ``notebooks/`` (editable installs).
    """
    package = Path(__file__).resolve().parent.parent
    dirs = [Path(p) for p in os.environ.get(ENV_TEMPLATES, "").split(os.pathsep) if p]
    dirs += [package / "notebooks", Path(sys.prefix) / "share" / "medai-lab" / "notebooks",
             package.parent / "notebooks"]  # fmt: skip
    return dirs


def find_template(template_id: str) -> Path | None:
    """The notebook file of template ``template_id``, or None when it is not installed."""
    entry = next((t for t in TEMPLATES if t["id"] == template_id), None)
    if entry is None:
        return None
    for folder in template_dirs():
        path = folder / entry["notebook"]
        if path.is_file():
            return path
    return None


def list_templates() -> list[dict[str, Any]]:
    """The contract's template list, each with ``available`` (its notebook is installed)."""
    return [{**t, "available": find_template(t["id"]) is not None} for t in TEMPLATES]


def copy_template(template_id: str, folder: Path) -> Path:
    """Copy the template into ``folder`` as ``name.ipynb``, else ``name-1.ipynb``, ``name-2``...

    The target is created with ``O_EXCL``: an existing file is never overwritten, even when two
    requests race.

    Raises
    ------
    KeyError
        Unknown template, or its notebook is not installed.
    FileExistsError
        No free name after :data:`MAX_COPIES` tries.
    """
    source = find_template(template_id)
    if source is None:
        raise KeyError(template_id)
    data = source.read_bytes()
    stem = Path(source.name).stem
    for n in range(MAX_COPIES):
        target = folder / (f"{stem}.ipynb" if n == 0 else f"{stem}-{n}.ipynb")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return target
    raise FileExistsError(f"no free name for {stem}.ipynb in {folder}")

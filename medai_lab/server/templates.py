"""The template notebooks behind the launcher cards: where they are, copying them safely."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from medai_lab import catalogue

ENV_TEMPLATES = "MEDAI_LAB_TEMPLATES"
MAX_COPIES = 10_000

# Cards after the task cards (one per catalogue task, see :func:`all_templates`).
OTHER_TEMPLATES: list[dict[str, str]] = [
    {"id": "pacs_deid", "title": "PACS & de-identification", "icon": "pacs",
     "notebook": "pacs_deid.ipynb",
     "description": "Query a PACS, pull a study de-identified, look at it"},
    {"id": "hackathon", "title": "Hackathon", "icon": "trophy", "notebook": "hackathon.ipynb",
     "description": "Train, submit, and see the leaderboard on hidden data"},
]  # fmt: skip


def all_templates() -> list[dict[str, str]]:
    """One card per task of the catalogue (``<task>.ipynb``), then :data:`OTHER_TEMPLATES`.

    Read on each call, so a task added with ``$MEDAI_TASKS_DIR`` gets its card (``available``
    once its notebook is installed). A task file's optional ``launcher`` block gives the card's
    ``order`` and ``description``; without one the text comes from its labels and modality.
    """
    ranked = []
    for name in catalogue.names():
        info = catalogue.get(name)
        card = catalogue.load_yaml(info.path).get("launcher") or {}
        labels = " and ".join(n.replace("_", " ") for _, n in info.labels).capitalize()
        default = f"{labels} on {info.modality}: data, viewer, training, evaluation, MLflow"
        entry = {
            "id": name,
            "title": f"{name.replace('_', ' ').capitalize()} segmentation",
            "icon": name,
            "notebook": f"{name}.ipynb",
            "description": str(card.get("description") or default),
        }
        order = card.get("order")
        ranked.append((order if isinstance(order, int | float) else float("inf"), name, entry))
    return [entry for *_, entry in sorted(ranked, key=lambda r: (r[0], r[1]))] + OTHER_TEMPLATES


def __getattr__(name: str) -> Any:
    if name == "TEMPLATES":  # the list as it is now (older name)
        return all_templates()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    entry = next((t for t in all_templates() if t["id"] == template_id), None)
    if entry is None:
        return None
    for folder in template_dirs():
        path = folder / entry["notebook"]
        if path.is_file():
            return path
    return None


def list_templates() -> list[dict[str, Any]]:
    """The contract's template list, each with ``available`` (its notebook is installed)."""
    return [{**t, "available": find_template(t["id"]) is not None} for t in all_templates()]


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

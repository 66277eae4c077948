"""Structure names, their synonyms and SNOMED CT codes: the one home for label vocabulary.

RTSTRUCT ROI names and SEG segment labels are matched here; the SEG writer takes its codes from
here. The table is data (``io/data/structures.yaml``); ``$MEDAI_STRUCTURES`` adds a user table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError

# Words that mean the same thing in ROI names (laterality, spelling).
_SAME_WORD = {
    "l": "left",
    "lt": "left",
    "lft": "left",
    "sin": "left",
    "r": "right",
    "rt": "right",
    "dx": "right",
    "tumor": "tumour",
    "tumors": "tumours",
}


@dataclass(frozen=True)
class Code:
    """A coded concept (scheme designator, value, meaning)."""

    scheme: str
    value: str
    meaning: str


@dataclass(frozen=True)
class Structure:
    """One anatomical structure or finding."""

    name: str
    category: Code
    code: Code
    part_of: str | None
    synonyms: tuple[str, ...]


def normalise(name: str) -> frozenset[str]:
    """Word set of an ROI name: case, separators, word order and laterality spelling ignored."""
    words = re.split(r"[\s_\-.,/()]+", name.strip().lower())
    return frozenset(_SAME_WORD.get(w, w) for w in words if w)


def _read_table(text: str, source: str) -> dict[str, Any]:
    import yaml

    table = yaml.safe_load(text) or {}
    if not isinstance(table, dict) or not isinstance(table.get("structures", {}), dict):
        raise MedaiError(f"structure table {source}: expected a 'structures' mapping")
    return table


def _code(raw: Mapping[str, Any], where: str) -> Code:
    try:
        return Code(str(raw["scheme"]), str(raw["value"]), str(raw["meaning"]))
    except (KeyError, TypeError) as err:
        raise MedaiError(f"structure table: {where} needs scheme, value and meaning") from err


@cache
def _load(user_file: str | None) -> dict[str, Structure]:
    base = _read_table(
        resources.files("medai_lab.io").joinpath("data", "structures.yaml").read_text(),
        "built-in",
    )
    categories = dict(base["category_codes"])
    raw: dict[str, dict[str, Any]] = {k: dict(v) for k, v in base["structures"].items()}
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise MedaiError("$MEDAI_STRUCTURES does not name a readable file")
        extra = _read_table(path.read_text(), "$MEDAI_STRUCTURES")
        categories.update(extra.get("category_codes") or {})
        for name, entry in (extra.get("structures") or {}).items():
            merged = raw.setdefault(str(name), {})
            synonyms = list(merged.get("synonyms", [])) + list(entry.get("synonyms", []))
            merged.update(entry)
            merged["synonyms"] = synonyms
    out: dict[str, Structure] = {}
    for name, entry in raw.items():
        cat = entry.get("category", "anatomy")
        if cat not in categories or "code" not in entry:
            raise MedaiError(f"structure table: {name!r} needs a known category and a code")
        out[name] = Structure(
            name=name,
            category=_code(categories[cat], f"category {cat}"),
            code=_code(entry["code"], name),
            part_of=entry.get("part_of"),
            synonyms=tuple(str(s) for s in entry.get("synonyms", [])),
        )
    return out


def structures() -> dict[str, Structure]:
    """Every known structure by name (built-in table plus ``$MEDAI_STRUCTURES``)."""
    return _load(os.environ.get("MEDAI_STRUCTURES") or None)


def _index() -> dict[frozenset[str], str]:
    index: dict[frozenset[str], str] = {}
    for s in structures().values():
        for text in (s.name, *s.synonyms):
            index.setdefault(normalise(text), s.name)
    return index


def match_structure(roi_name: str, extra: Mapping[str, str] | None = None) -> Structure | None:
    """The structure an ROI/segment name means, or ``None`` when it is not known.

    ``extra`` maps more ROI names to structure names (a caller's own synonyms; checked first).
    """
    table = structures()
    key = normalise(roi_name)
    for alias, target in (extra or {}).items():
        if normalise(alias) == key:
            if target not in table:
                raise MedaiError(f"synonym {alias!r} points to unknown structure {target!r}")
            return table[target]
    index = _index()
    # Numbered ROIs ("GTV_1", "Nodule 2") mean the structure without the number.
    name = index.get(key) or index.get(frozenset(w for w in key if not w.isdigit()))
    return table[name] if name else None


def fills(structure: Structure, label_name: str) -> bool:
    """Whether ``structure`` belongs to the task label called ``label_name`` (itself or a part)."""
    target = match_structure(label_name)
    if target is None:
        return False
    return structure.name == target.name or structure.part_of == target.name

"""Label tables for overlays: names (a dict, labels.json or MSD dataset.json) and colours."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

_DATA = Path(__file__).with_name("data")
COMPARE_COLORS = {"tp": (0, 200, 0), "fp": (230, 40, 40), "fn": (40, 120, 255)}


@cache
def _table(name: str) -> dict[str, Any]:
    return json.loads((_DATA / name).read_text())


def window_presets() -> dict[str, tuple[float, float]]:
    """CT presets: name -> (width, level) in HU."""
    return {k: (float(v[0]), float(v[1])) for k, v in _table("presets.json").items() if k[0] != "_"}


def read_label_names(source: Any) -> dict[int, str]:
    """Names from a mapping, a ``labels.json`` ({"5": "liver"}) or MSD ``dataset.json``."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {int(k): str(v) for k, v in source.items()}
    data = json.loads(Path(source).read_text())
    if isinstance(data, dict) and isinstance(data.get("labels"), dict):
        data = data["labels"]  # MSD dataset.json
    if isinstance(data, dict) and data and all(str(v).isdigit() for v in data.values()):
        data = {v: k for k, v in data.items()}  # nnU-Net v2: {"liver": 1}
    return {int(k): str(v) for k, v in data.items()}


def names_beside(path: Any) -> dict[int, str]:
    """``labels.json`` (or ``dataset.json``) next to a label file, when there is one."""
    if not isinstance(path, (str, Path)):
        return {}
    folder = Path(path).parent if Path(path).is_file() else Path(path)
    for candidate in (
        folder / "labels.json",
        folder / "dataset.json",
        folder.parent / "dataset.json",
    ):
        if candidate.is_file():
            try:
                return read_label_names(candidate)
            except (ValueError, OSError, AttributeError):
                continue
    return {}


def color_for(value: int, name: str | None) -> tuple[int, int, int]:
    """A label's colour: by structure name when known, else the palette by value."""
    table = _table("label_colors.json")
    low = (name or "").lower()
    for key, rgb in table["named"]:
        if key in low:
            return tuple(rgb)  # type: ignore[return-value]
    palette = table["palette"]
    return tuple(palette[(value - 1) % len(palette)])  # type: ignore[return-value]


def label_table(arrays: list[np.ndarray], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """``[{value, name, color}]`` for every non-zero value in ``arrays``."""
    values: set[int] = set()
    for arr in arrays:
        values.update(int(v) for v in np.unique(arr) if v != 0)
    return [
        {"value": v, "name": names.get(v, f"label {v}"), "color": list(color_for(v, names.get(v)))}
        for v in sorted(values)
    ]

"""Ruler measurements from the browser (PROTOCOL.md "Measurements"), checked and made world-aware.

The browser sends its whole list after each change; the kernel keeps what it can read: each item
``{"kind": "distance", "plane", "a", "b", "mm", "a_world", "b_world"}`` with voxel ends ``a``/``b``
(x-y-z indices), the length ``mm`` the screen shows, and the ends in RAS world mm from the image
affine (so a notebook can place them without redoing the geometry).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PLANES = ("axial", "coronal", "sagittal")


def _voxel(value: Any) -> tuple[int, int, int] | None:
    if not isinstance(value, list | tuple) or len(value) != 3:
        return None
    try:
        return int(value[0]), int(value[1]), int(value[2])
    except (TypeError, ValueError):
        return None


def measurements(items: Any, affine: np.ndarray) -> list[dict[str, Any]]:
    """The readable items of a browser ``measurements`` message (malformed ones are dropped)."""
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("plane") not in PLANES:
            continue
        a, b = _voxel(item.get("a")), _voxel(item.get("b"))
        mm = item.get("mm")
        if a is None or b is None or not isinstance(mm, int | float):
            continue
        world = [(affine[:3, :3] @ np.asarray(v, float) + affine[:3, 3]).tolist() for v in (a, b)]
        out.append({"kind": "distance", "plane": item["plane"], "a": a, "b": b, "mm": float(mm),
                    "a_world": world[0], "b_world": world[1]})  # fmt: skip
    return out

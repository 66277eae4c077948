"""Which voxel lands where on screen: the one display convention of every picture we draw.

Arrays are RAS+ (i toward patient right, j anterior, k superior). Radiological convention puts
the patient's right on the screen's left; neurological mirrors axial and coronal; sagittal
shows anterior on the left in both. The notebook viewer (``widgets``: its kernel-side PNG and,
implementing the same table, the browser code in ``widgets/js/src``; PROTOCOL.md states it),
the training overlays (``tasks.overlay``) and the demo's overview all take their slices and
edge letters from here, so no two pictures disagree. Only numpy: any layer may import it.
"""

from __future__ import annotations

import numpy as np

PLANES = ("axial", "coronal", "sagittal")
_SLICED_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
# (left, right, top, bottom) edge letters in radiological convention
_LETTERS = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
}


def sliced_axis(plane: str) -> int:
    return _SLICED_AXIS[plane]


def screen_slice(
    array: np.ndarray, plane: str, index: int, convention: str = "radiological"
) -> np.ndarray:
    """The 2-D slice as it appears on screen: rows top to bottom, columns left to right."""
    if plane == "axial":
        img = array[:, :, index].T  # rows j, columns i
    elif plane == "coronal":
        img = array[:, index, :].T  # rows k, columns i
    elif plane == "sagittal":
        img = array[index, :, :].T  # rows k, columns j
    else:
        raise ValueError(f"unknown plane {plane!r}")
    img = img[::-1]  # anterior / superior on top
    if plane == "sagittal" or convention == "radiological":
        img = img[:, ::-1]  # patient right (or anterior) on the left
    return img


def pixel_size(spacing: tuple[float, float, float], plane: str) -> tuple[float, float]:
    """(width, height) in mm of one screen pixel of the plane."""
    sx, sy, sz = spacing
    return {"axial": (sx, sy), "coronal": (sx, sz), "sagittal": (sy, sz)}[plane]


def edge_letters(plane: str, convention: str = "radiological") -> tuple[str, str, str, str]:
    """(left, right, top, bottom) orientation letters."""
    left, right, top, bottom = _LETTERS[plane]
    if convention == "neurological" and plane != "sagittal":
        left, right = right, left
    return left, right, top, bottom


def voxel_to_screen(
    ijk: tuple[int, int, int],
    shape: tuple[int, int, int],
    plane: str,
    convention: str = "radiological",
) -> tuple[int, int]:
    """(column, row) of voxel ``ijk`` in :func:`screen_slice` of its plane."""
    i, j, k = ijk
    nx, ny, nz = shape
    col, row = {"axial": (i, ny - 1 - j), "coronal": (i, nz - 1 - k), "sagittal": (j, nz - 1 - k)}[
        plane
    ]
    if plane == "sagittal":
        col = ny - 1 - j
    elif convention == "radiological":
        col = nx - 1 - i
    return col, row

"""Fill boxes in the stored pixel values; nothing outside a box changes."""

from __future__ import annotations

import numpy as np

from medai_lab.deid.pixels.frames import Pixels

Box = tuple[int, int, int, int]


def fill(px: Pixels, boxes: list[Box]) -> tuple[np.ndarray, list[Box]]:
    """A copy of ``px.stored`` with every box filled with each frame's black, on every frame,
    and the boxes as filled."""
    out = px.stored.copy()
    if px.photometric == "YBR_FULL_422":
        # two pixels share one chroma pair: widen boxes to whole pairs so that re-subsampling
        # is exact and no pair outside the boxes is touched
        w = px.stored.shape[2]
        boxes = [(x0 - x0 % 2, y0, min(w, x1 + x1 % 2), y1) for x0, y0, x1, y1 in boxes]
    for f in range(px.frames):
        black = px.black(f)
        for x0, y0, x1, y1 in boxes:
            out[f, y0:y1, x0:x1] = black
    return out, boxes

"""A second look at each region the text detector reports: is there lettering inside?

The detector is a scene-text network. On small, smooth images (synthetic phantoms, 64-128 px
scans it enlarges four times) it also answers to whole bodies, organ outlines and rows of round
structures, and on any image to ruler combs. Lettering has properties those lack, measured here
on the 8-bit view inside the box:

- a line of text is at most a fraction of the image high and at least about as wide as high;
- thin strokes: enough pixels stand out from a morphological opening (or closing, for dark ink)
  at about a third of the box height, and a row through the middle crosses several of them;
- strokes run sideways as well (bars, bowls, serifs): a ruler's ticks are vertical lines on one
  long base line, with hardly any short horizontal runs.

Every threshold is loose on purpose: the benchmark corpus keeps its recall with these checks
(see benchmarks/bench_deid_pixels.py); a region that fails them is anatomy or a graphic.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]
MAX_LINE = 0.3  # a text line is at most this fraction of the image's shorter side
MAX_LINE_PX = 72  # ... and at most this high (or 8 % of the height, on big images)
MIN_FILL = 0.03  # stroke pixels over box pixels
MIN_CROSSINGS = 0.7  # stroke edges crossed per box-height of width, on the middle rows
MIN_SIDEWAYS = 0.3  # share of stroke pixels in short horizontal runs (two pixels or more)


def plausible_size(box: Box, h: int, w: int) -> bool:
    """A box shaped like a line of text in an ``h`` x ``w`` image."""
    bh, bw = box[3] - box[1], box[2] - box[0]
    return bh <= min(max(MAX_LINE_PX, 0.08 * h), MAX_LINE * min(h, w)) and bw >= bh


def has_lettering(rgb: np.ndarray, box: Box) -> bool:
    """True when the box of the 8-bit RGB view holds thin strokes laid out like letters."""
    from scipy import ndimage

    x0, y0, x1, y1 = box
    bh = y1 - y0
    if bh < 3 or x1 - x0 < 3:
        return True  # too small to judge: keep it
    k = max(3, round(0.35 * bh))
    h, w = rgb.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0 - k), max(0, y0 - k), min(w, x1 + k), min(h, y1 + k)
    crop = rgb[cy0:cy1, cx0:cx1]
    if crop.strides[2] == 0:  # grey view
        hi = lo = crop[..., 0].astype(np.int16)
    else:
        hi, lo = crop.max(axis=2).astype(np.int16), crop.min(axis=2).astype(np.int16)
    inner = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
    light = (hi - ndimage.grey_opening(hi, size=(k, k)))[inner]
    dark = (ndimage.grey_closing(lo, size=(k, k)) - lo)[inner]
    return any(_letters(top, bh) for top in (light, dark))


def _letters(top: np.ndarray, bh: int) -> bool:
    """Stroke tests on one polarity's top-hat response inside the box."""
    peak = float(np.percentile(top, 99))
    if peak < 16:
        return False
    strokes = top > max(16.0, 0.45 * peak)
    if strokes.mean() < MIN_FILL:
        return False
    mid = strokes[bh // 4 : max(bh // 4 + 1, 3 * bh // 4)].astype(np.int8)
    crossings = np.abs(np.diff(mid, axis=1)).sum(axis=1).mean()
    if crossings / max(1.0, strokes.shape[1] / bh) < MIN_CROSSINGS:
        return False
    return _sideways(strokes, bh) >= MIN_SIDEWAYS


def _sideways(strokes: np.ndarray, bh: int) -> float:
    """Share of stroke pixels in horizontal runs of 2 .. 1.5 box heights (long rules left out)."""
    padded = np.pad(strokes.astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(padded, axis=1)
    rows_s, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    runs = ends - starts  # row-major order pairs each start with its end
    del rows_s
    short = runs <= 1.5 * bh
    total = runs[short].sum()
    return float(runs[short & (runs >= 2)].sum() / total) if total else 0.0

"""Where to redact: text boxes from the detector on every frame (or a documented subset of
long cine loops), grown by a margin, plus the fixed regions of known vendor layouts.

Each frame is read in several looks (``frames.view`` and ``frames.second_looks``): the
windowed view, the equalised grey values or, for colour, the chroma and green channel, and
colour frames up to ``CLOSE_SIDE`` enlarged. Every box must then pass the shape and stroke
checks of ``verify`` and the recogniser's check of ``textness``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medai_lab.deid.pixels import ocr, prefilter, textness, verify
from medai_lab.deid.pixels.frames import Pixels, second_looks, view

Box = ocr.Box
MAX_FRAMES = 16  # cine loops longer than this: see ``find_boxes``
RECOGNISER_CHECK = True  # ask ``textness`` about each box (rapidocr engine)
SECOND_LOOKS = True  # rapidocr: also run the detector on ``frames.second_looks`` of a frame


@dataclass
class Found:
    boxes: list[Box]  # in image pixels, applied to every frame
    frames_checked: int  # frames looked at one by one (the projections cover all of them)
    detector_runs: int


def _grow(box: Box, h: int, w: int) -> Box:
    """A margin around a detected box: anti-aliased edges and the detector's loose fit."""
    x0, y0, x1, y1 = box
    m = 2 + (y1 - y0) // 8
    return max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)


def _frames_to_check(n: int) -> list[int]:
    if n <= MAX_FRAMES:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)})


def find_boxes(px: Pixels, *, engine: str = ocr.DEFAULT, use_prefilter: bool = True) -> Found:
    """Text boxes over all frames of ``px``.

    Every frame is checked when there are at most ``MAX_FRAMES``. Longer loops (ultrasound cine)
    get ``MAX_FRAMES`` evenly spaced frames plus the per-pixel maximum and minimum over *all*
    frames: burned-in text is drawn at a fixed place at the brightest or darkest value, so it
    survives in those projections even when it appears in frames that were not sampled. The
    union of the boxes is applied to every frame.
    """
    h, w = px.stored.shape[1:3]
    frames = _frames_to_check(px.frames)
    views = [view(px, i) for i in frames]
    if px.frames > MAX_FRAMES:
        stack_hi = stack_lo = None
        for i in range(px.frames):
            v = views[frames.index(i)] if i in frames else view(px, i)
            stack_hi = v if stack_hi is None else np.maximum(stack_hi, v)
            stack_lo = v if stack_lo is None else np.minimum(stack_lo, v)
        if stack_hi is not None and stack_lo is not None:  # px.frames > MAX_FRAMES >= 1
            views += [stack_hi, stack_lo]
    boxes: list[Box] = []
    runs = 0
    for k, v in enumerate(views):
        looks = [v]
        if SECOND_LOOKS and engine == "rapidocr" and k < len(frames):
            looks += second_looks(px, frames[k], v)
        if use_prefilter and not (
            prefilter.maybe_text(v) or any(prefilter.maybe_text(x, False) for x in looks[1:])
        ):
            continue
        for j, x in enumerate(looks):
            runs += 1
            scale = close_look(x, h, w) if j == 0 and engine == "rapidocr" else None
            found = [b for b in ocr.detect(x, engine, scale) if _lettering(x, b, h, w, engine)]
            if found and engine == "rapidocr":
                found += reread_lines(x, found, scale or ocr._scale(h, w))
            boxes.extend(_grow(b, h, w) for b in found)
    return Found(sorted(set(boxes)), len(frames), runs)


def reread_lines(rgb: np.ndarray, found: list[Box], scale: float) -> list[Box]:
    """Each band of rows holding a found box, read again across the full width at twice the
    scale: a line's dim or small part (a name before a bright date, bitmap lettering) is often
    missed while the rest of the line is found. Cheap: a band is a sliver of the frame."""
    h, w = rgb.shape[:2]
    bands: list[list[int]] = []
    for y0, y1 in sorted((b[1], b[3]) for b in found):
        m = max(2, (y1 - y0) // 2)
        lo, hi = max(0, y0 - m), min(h, y1 + m)
        if bands and lo <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], hi)
        else:
            bands.append([lo, hi])
    out: list[Box] = []
    for lo, hi in bands:
        band = np.ascontiguousarray(rgb[lo:hi])
        for c in ocr.candidates(band, scale=min(8.0, 2 * scale)):
            x0, y0, x1, y1 = c.box
            box = (x0, y0 + lo, x1, y1 + lo)
            if _lettering(rgb, box, h, w, "rapidocr"):
                out.append(box)
    return out


CLOSE_SIDE = 1280  # colour frames up to this side: the detector reads the base view enlarged


def close_look(rgb: np.ndarray, h: int, w: int) -> float | None:
    """Detector scale for the base view of a colour frame: ultrasound and screen captures
    (up to about 1024 px) carry 8-10 px lettering, which the detector finds far more reliably
    at twice the size. Grey frames keep the default (enlarging them raises false positives
    on mosaics and anatomy more than it finds text)."""
    side = max(h, w)
    if rgb.strides[2] == 0 or side >= CLOSE_SIDE or side < 256:
        return None
    return min(4.0, CLOSE_SIDE / side)


def _lettering(rgb: np.ndarray, box: Box, h: int, w: int, engine: str) -> bool:
    """The detector's region is shaped like a text line, holds letter-like strokes, and the
    recogniser hears characters in it."""
    return (
        verify.plausible_size(box, h, w)
        and verify.has_lettering(rgb, box)
        and (engine != "rapidocr" or not RECOGNISER_CHECK or textness.is_text(rgb, box))
    )


def coverage_mask(boxes: list[Box], h: int, w: int) -> np.ndarray:
    """The union of ``boxes`` as a boolean (rows, cols) mask."""
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask

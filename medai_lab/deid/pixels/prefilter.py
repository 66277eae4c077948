"""A cheap test for "this frame may carry text", so that clean frames skip the detector.

Text is strokes: small connected components of high local contrast, a few pixels to a few
dozen pixels high, standing in rows. Anatomy gives large smooth regions and long edges; noise
gives single pixels. The test is tuned to let text through (a false "maybe" only costs one
detector run); the benchmark measures recall with and without it.
"""

from __future__ import annotations

import numpy as np

STEP = 40  # grey levels above/below the local mean that count as a stroke pixel
STRONG = 80  # the same for strokes that are not at the extremes
LONG = 5  # letters in a row needed for those
FAINT, LONGER = 50, 7  # a long line of fainter strokes (mid-grey text over anatomy)
SMALL = 256  # frames up to this size always go to the detector
_MIN_H, _MAX_H = 3, 80  # glyph heights considered (pixels)
_MAX_COMPONENTS = 3000  # beyond this the frame is too busy to judge: say "maybe"


def maybe_text(rgb: np.ndarray, windowed: bool = True) -> bool:
    """True when the 8-bit RGB view has rows of glyph-like high-contrast components.

    Cues: strokes at the view's extremes (0 or 255: the frame's own minimum or maximum, where
    scanners draw text) standing out from their neighbourhood; for text drawn at other values,
    rows of strokes with a larger contrast, or longer rows with a smaller one. ``windowed=False``
    keeps only the larger-contrast rows: for the equalised and colour looks, where 0 and 255
    are everywhere (air, bone, noise spread over the whole range) and faint strokes are noise.
    """
    from scipy import ndimage

    if max(rgb.shape[:2]) <= SMALL:
        return True  # the detector is cheap on small frames, and strokes there are too few
    if rgb.strides[2] == 0:  # a grey view (one channel broadcast to three)
        hi = lo = rgb[..., 0]
    else:
        hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    size = 31  # wide enough that a bold stroke does not raise its own local mean
    mean = ndimage.uniform_filter(hi.astype(np.float32), size)
    if windowed and _rows_of_glyphs(_isolated(hi == 255, hi > mean + STEP), 3):  # light, max
        return True
    mean_lo = mean if lo is hi else ndimage.uniform_filter(lo.astype(np.float32), size)
    if windowed and _rows_of_glyphs(_isolated(lo == 0, lo < mean_lo - 2 * STEP), 3):  # dark, min
        return True
    if _rows_of_glyphs(hi > mean + STRONG, LONG) or _rows_of_glyphs(lo < mean_lo - STRONG, LONG):
        return True
    return windowed and (
        _rows_of_glyphs(hi > mean + FAINT, LONGER) or _rows_of_glyphs(lo < mean_lo - FAINT, LONGER)
    )


def _isolated(extreme: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """Extreme-valued strokes with contrast, minus those that touch other extreme pixels: a
    glyph is surrounded by background, while the rim of a clipped region (air outside the
    field of view, gas, saturated bone) breaks into fragments that border more of it."""
    from scipy import ndimage

    mask = extreme & contrast
    spill = extreme & ~mask
    if not spill.any() or not mask.any():
        return mask
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    touch = ndimage.binary_dilation(spill, structure=np.ones((3, 3), bool)) & mask
    bad = np.unique(labels[touch])
    return mask & ~np.isin(labels, bad[bad > 0])


def _rows_of_glyphs(mask: np.ndarray, letters: int) -> bool:
    from scipy import ndimage
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return False
    slices = ndimage.find_objects(labels)
    box = np.array([(s[0].start, s[0].stop, s[1].start, s[1].stop) for s in slices], np.int32)
    h = box[:, 1] - box[:, 0]
    w = box[:, 3] - box[:, 2]
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    fill = area / (h * w)
    glyph = (h >= _MIN_H) & (h <= _MAX_H) & (w <= 60 * h) & (area >= 4) & (fill <= 0.9)
    word = glyph & (w >= 2 * h) & (fill >= 0.12)  # touching letters merge into one component
    glyph &= (w <= 2 * h) | word
    k = int(glyph.sum())
    if k == 0:
        return False
    if k > _MAX_COMPONENTS:
        return True
    b, hh = box[glyph], h[glyph]
    top, bottom = b[:, 0], b[:, 1]
    tall = np.maximum(hh[:, None], hh[None, :])
    # neighbours on one line: a shared baseline or cap line, similar height, a narrow gap
    same_line = (np.abs(bottom[:, None] - bottom[None, :]) <= np.maximum(1, tall // 4)) | (
        np.abs(top[:, None] - top[None, :]) <= np.maximum(1, tall // 4)
    )
    similar = (hh[:, None] <= 1.8 * hh[None, :]) & (hh[None, :] <= 1.8 * hh[:, None])
    gap = np.maximum(b[:, 2][None, :] - b[:, 3][:, None], b[:, 2][:, None] - b[:, 3][None, :])
    near = gap <= 1.5 * tall
    links = same_line & similar & near
    weight = np.where(word[glyph], 3, 1)  # a merged word counts as three letters
    # a line is a chain of neighbours: "28.09.1990" links 2-8, 8-0, ... but not 2 to 9
    _, line = connected_components(csr_matrix(links), directed=False)
    return bool((np.bincount(line, weights=weight) >= letters).any())

"""The second looks (equalised grey, chroma and green views), the recogniser's check on each
detected box, and the pre-filter's reading of a text line as a chain of glyphs."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont

from medai_lab.deid.pixels import textness
from medai_lab.deid.pixels.detect import find_boxes
from medai_lab.deid.pixels.frames import Pixels, decode, equalised, second_looks, view
from medai_lab.deid.pixels.prefilter import maybe_text

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _ct(shared_data, index: int = 10) -> Pixels:
    path = sorted((shared_data / "ct_series_basel" / "dicom").iterdir())[index]
    data = path.read_bytes()
    return decode(data, pydicom.dcmread(io.BytesIO(data)))


def _write(arr: np.ndarray, text: str, xy: tuple[int, int], size: int, value: float):
    """Draw ``text`` into a 2-D array at ``value``; returns its ink box."""
    mask = Image.new("L", arr.shape[::-1], 0)
    ImageDraw.Draw(mask).text(xy, text, font=ImageFont.truetype(FONT, size), fill=255)
    alpha = np.asarray(mask, np.float64) / 255
    arr[...] = np.round(arr * (1 - alpha) + value * alpha).astype(arr.dtype)
    ys, xs = np.nonzero(alpha > 0.1)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _covered(box, boxes) -> float:
    x0, y0, x1, y1 = box
    mask = np.zeros((y1, x1), bool)
    for a, b, c, d in boxes:
        mask[b:d, a:c] = True
    return float(mask[y0:y1, x0:x1].mean())


def test_equalised_keeps_order_and_spans_the_range():
    rng = np.random.default_rng(0)
    arr = rng.integers(-1024, 3000, size=(64, 64)).astype(np.int16)
    eq = equalised(arr)
    assert eq.dtype == np.uint8 and eq.min() == 0 and eq.max() == 255
    order = np.argsort(arr, axis=None, kind="stable")
    assert (np.diff(eq.ravel()[order].astype(int)) >= 0).all()


def test_colour_looks_are_chroma_and_green():
    rgb = np.zeros((1, 8, 8, 3), np.uint8)
    rgb[0, :, :4] = (100, 100, 100)  # grey
    rgb[0, :, 4:] = (0, 255, 0)  # green lettering colour
    px = Pixels(rgb, "RGB")
    chroma, green = second_looks(px, 0, view(px, 0))
    assert chroma[0, 0, 0] == 0 and chroma[0, 7, 0] == 255
    assert green[0, 0, 0] == 100 and green[0, 7, 0] == 255


def test_a_dated_line_is_one_chain_for_the_prefilter(shared_data):
    """'28.09.1990': the dots break the digits into pairs, which must still make one line."""
    px = _ct(shared_data)
    stored = px.stored.copy()
    stored[0, :30, :200] = stored[0].min()
    _write(stored[0], "28.09.1990", (4, 1), 17, float(np.percentile(stored[0], 99)))
    assert maybe_text(view(Pixels(stored, px.photometric), 0))


def test_dim_text_beside_bright_text_is_found(shared_data, ocr_engine):
    """Metal (or bright anti-aliased lettering) stretches the window and leaves dim lettering
    a few grey levels above its background; the equalised look still finds it."""
    px = _ct(shared_data)
    stored = px.stored.copy()
    frame = stored[0]
    top = float(np.iinfo(frame.dtype).max if frame.dtype.kind == "u" else 32767)
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
    metal = top * np.exp(-((yy - 250) ** 2 + (xx - 250) ** 2) / (2 * 40.0**2))
    frame[...] = np.maximum(frame, metal).astype(frame.dtype)
    frame[440:500, 20:300] = frame.min()
    dim = _write(frame, "ID 170854919", (24, 452), 14, float(frame.min()) + 120)
    found = find_boxes(Pixels(stored, px.photometric))
    assert _covered(dim, found.boxes) >= 0.9


def test_recogniser_hears_a_name_and_not_anatomy(shared_data, ocr_engine):
    px = _ct(shared_data)
    stored = px.stored.copy()
    frame = stored[0]
    box = _write(frame, "NGUYEN^PETER", (300, 480), 16, float(frame.max()))
    v = view(Pixels(stored, px.photometric), 0)
    x0, y0, x1, y1 = box
    assert textness.is_text(v, (x0 - 3, y0 - 3, x1 + 3, y1 + 3))
    count, _ = textness.characters(v, (x0 - 3, y0 - 3, x1 + 3, y1 + 3))
    assert count >= 8
    # line-shaped boxes inside the body: organs and bone, no lettering
    inside = [(x, y, x + 120, y + 24) for x in (140, 200, 260) for y in (200, 260, 320)]
    assert not any(textness.is_text(v, b) for b in inside)


@pytest.mark.parametrize("index", [0, 10, 19])
def test_clean_ct_slices_get_no_boxes(shared_data, ocr_engine, index):
    assert find_boxes(_ct(shared_data, index)).boxes == []

"""Every picture shows the patient the same way round: training overlays, the viewer's PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest

from medai_lab.display import PLANES, edge_letters

SHAPE = (40, 36, 30)
MARKER = (slice(28, 36), slice(26, 34), slice(20, 28))  # patient right, anterior, superior
WHERE = {"R", "A", "S"}  # the marker's side on each axis


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    image = np.full(SHAPE, 40.0, np.float32)
    image[MARKER] = 1000.0
    label = np.zeros(SHAPE, np.uint8)
    label[MARKER] = 1
    return image, label


def _side(white: np.ndarray) -> tuple[str, str]:
    """(left|right, top|bottom) of the marker's white pixels in one panel (rows top down)."""
    rows, cols = np.nonzero(white)
    assert len(rows), "marker not drawn"
    h, w = white.shape
    across = "left" if cols.mean() < w / 2 else "right"
    return across, ("top" if rows.mean() < h / 2 else "bottom")


def _expected(plane: str) -> tuple[str, str]:
    left, _, top, _ = edge_letters(plane)
    return ("left" if left in WHERE else "right"), ("top" if top in WHERE else "bottom")


def _white(rgb: np.ndarray) -> np.ndarray:
    return np.all(rgb[..., :3] >= 240, axis=-1)


def _overlay_sides() -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from medai_lab.tasks.overlay import overlay_figure

    image, label = _phantom()
    example = {"image": image, "label": label, "prediction": label, "spacing": (1.0, 1.2, 2.0)}
    fig = overlay_figure(example, title="")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    height = rgba.shape[0]
    sides, letters = {}, {}
    for ax in fig.axes:
        box = ax.get_window_extent()  # display pixels, origin bottom left
        x0, x1 = round(box.x0) + 1, round(box.x1) - 1
        y0, y1 = height - round(box.y1) + 1, height - round(box.y0) - 1
        plane = ax.get_title()
        sides[plane] = _side(_white(rgba[y0:y1, x0:x1]))
        texts = sorted(ax.texts, key=lambda t: (t.get_position()[0], -t.get_position()[1]))
        letters[plane] = [t.get_text() for t in texts]
    return sides, letters


def _viewer_png_sides() -> dict[str, tuple[str, str]]:
    from PIL import Image

    from medai_lab.widgets.render import three_planes_png

    image, _ = _phantom()
    cursor = tuple((s.start + s.stop) // 2 for s in MARKER)
    png = three_planes_png(image, (1.0, 1.2, 2.0), cursor, (400.0, 200.0))
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[14:]  # below the titles
    body = np.any(rgb > 8, axis=(0, 2))  # tile columns: the phantom's body is grey, gaps black
    edges = np.flatnonzero(np.diff(np.r_[0, body.astype(int), 0]))
    tiles = list(zip(edges[::2], edges[1::2], strict=True))
    assert len(tiles) == 3
    sides = {}
    for plane, (c0, c1) in zip(PLANES, tiles, strict=True):
        tile = rgb[:, c0:c1]
        rows = np.flatnonzero(np.any(tile > 8, axis=(1, 2)))
        sides[plane] = _side(_white(tile[rows[0] : rows[-1] + 1]))
    return sides


def test_overlay_and_viewer_show_the_marker_on_the_side_their_letters_name() -> None:
    pytest.importorskip("matplotlib")
    overlay, letters = _overlay_sides()
    viewer = _viewer_png_sides()
    assert overlay == viewer == {plane: _expected(plane) for plane in PLANES}
    for plane in PLANES:
        left, right, top, bottom = edge_letters(plane)
        # sorted left to right, then top to bottom within a column
        assert letters[plane] == [left, top, bottom, right], plane

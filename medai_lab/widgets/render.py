"""Kernel-side rendering of the three planes: the PNG carried in the widget's mime bundle, so
exported notebooks (nbconvert HTML, GitHub) still show the image and its overlays."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from medai_lab.widgets.labels import COMPARE_COLORS
from medai_lab.widgets.planes import PLANES, edge_letters, pixel_size, screen_slice, sliced_axis


def windowed(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """uint8 grey of ``values`` under (width, level)."""
    width, level = max(float(window[0]), 1e-6), float(window[1])
    scaled = (values.astype(np.float32) - (level - width / 2)) * (255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def colour_lut(table: list[dict[str, Any]], hidden: set[int] = frozenset()) -> np.ndarray:  # type: ignore[assignment]
    """(max value + 1, 4) RGBA table; alpha 0 for background and hidden labels."""
    top = max([t["value"] for t in table], default=0)
    lut = np.zeros((top + 1, 4), dtype=np.uint8)
    for t in table:
        if t["value"] not in hidden:
            lut[t["value"]] = [*t["color"], 255]
    return lut


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def blend(
    grey: np.ndarray,
    labels: np.ndarray | None,
    lut: np.ndarray,
    *,
    truth: np.ndarray | None = None,
    opacity: float = 0.5,
    outlined: bool = False,
) -> np.ndarray:
    """RGB of a grey slice with its overlay; with ``truth``, ``labels`` is the prediction and
    the overlay shows true positives, false positives and false negatives."""
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    layers: list[tuple[np.ndarray, np.ndarray]] = []  # (mask, colour per pixel)
    if labels is not None and truth is not None:
        p, t = labels > 0, truth > 0
        for mask, key in ((p & t, "tp"), (p & ~t, "fp"), (~p & t, "fn")):
            layers.append(
                (mask, np.broadcast_to(np.array(COMPARE_COLORS[key], np.float32), rgb.shape))
            )
    elif labels is not None:
        clipped = np.minimum(labels.astype(np.int64), len(lut) - 1)
        rgba = lut[clipped]
        layers.append((rgba[..., 3] > 0, rgba[..., :3].astype(np.float32)))
    for mask, colour in layers:
        if outlined:
            mask = outline(mask)
        a = opacity if not outlined else 1.0
        rgb[mask] = (1 - a) * rgb[mask] + a * colour[mask]
    return rgb.astype(np.uint8)


def three_planes_png(
    image: np.ndarray,
    spacing: tuple[float, float, float],
    cursor: tuple[int, int, int],
    window: tuple[float, float],
    *,
    labels: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    lut: np.ndarray | None = None,
    opacity: float = 0.5,
    convention: str = "radiological",
    height: int = 320,
) -> bytes:
    """PNG bytes of axial, coronal and sagittal planes through ``cursor`` (RAS+ arrays).

    Drawn with Pillow (about 0.1 s for 512x512 slices): it runs each time a viewer is displayed.
    """
    from PIL import Image, ImageDraw

    slices = []
    for plane in PLANES:
        index = cursor[sliced_axis(plane)]
        grey = windowed(screen_slice(image, plane, index, convention), window)
        lab = None if labels is None else screen_slice(labels, plane, index, convention)
        tru = None if truth is None else screen_slice(truth, plane, index, convention)
        rgb = blend(grey, lab, lut if lut is not None else np.zeros((1, 4), np.uint8),
                    truth=tru, opacity=opacity)  # fmt: skip
        w_mm, h_mm = pixel_size(spacing, plane)
        slices.append((plane, index, rgb, rgb.shape[1] * w_mm, rgb.shape[0] * h_mm))
    # One scale (pixels per mm) for all three, so the planes keep their physical proportions.
    scale = min(height / max(s[4] for s in slices), 3 * height / sum(s[3] for s in slices))
    gap = 6
    tiles = []
    for plane, index, rgb, w_mm, h_mm in slices:
        size = (max(1, round(w_mm * scale)), max(1, round(h_mm * scale)))
        tile = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(tile)
        left, right, top, bottom = edge_letters(plane, convention)
        w, h = tile.size
        for text, xy in ((left, (3, h // 2 - 5)), (right, (w - 10, h // 2 - 5)),
                         (top, (w // 2 - 3, 2)), (bottom, (w // 2 - 3, h - 12))):  # fmt: skip
            draw.text(xy, text, fill=(255, 255, 0))
        tiles.append((tile, f"{plane} {index + 1}/{image.shape[sliced_axis(plane)]}"))
    title_h = 14
    sheet_h = max(t.size[1] for t, _ in tiles) + title_h
    sheet = Image.new("RGB", (sum(t.size[0] for t, _ in tiles) + gap * 2, sheet_h), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    x = 0
    for tile, title in tiles:
        sheet.paste(tile, (x, title_h + (sheet_h - title_h - tile.size[1]) // 2))
        draw.text((x + 2, 1), title, fill=(255, 255, 255))
        x += tile.size[0] + gap
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()

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
    dpi: int = 80,
) -> bytes:
    """PNG bytes of axial, coronal and sagittal planes through ``cursor`` (RAS+ arrays)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2), dpi=dpi, facecolor="black")
    for n, plane in enumerate(PLANES):
        ax = fig.add_subplot(1, 3, n + 1)
        index = cursor[sliced_axis(plane)]
        grey = windowed(screen_slice(image, plane, index, convention), window)
        lab = None if labels is None else screen_slice(labels, plane, index, convention)
        tru = None if truth is None else screen_slice(truth, plane, index, convention)
        rgb = blend(grey, lab, lut if lut is not None else np.zeros((1, 4), np.uint8),
                    truth=tru, opacity=opacity)  # fmt: skip
        w, h = pixel_size(spacing, plane)
        ax.imshow(rgb, extent=(0, rgb.shape[1] * w, rgb.shape[0] * h, 0), interpolation="nearest")
        ax.set_axis_off()
        left, right, top, bottom = edge_letters(plane, convention)
        style = {"color": "yellow", "fontsize": 11, "transform": ax.transAxes}
        ax.text(0.01, 0.5, left, ha="left", va="center", **style)
        ax.text(0.99, 0.5, right, ha="right", va="center", **style)
        ax.text(0.5, 0.99, top, ha="center", va="top", **style)
        ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)
        ax.set_title(
            f"{plane} {index + 1}/{image.shape[sliced_axis(plane)]}", color="white", fontsize=10
        )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="black")
    return buffer.getvalue()

"""Overlay figures of validation cases: three orthogonal planes, truth vs prediction outlines.

Slices and edge letters come from :mod:`medai_lab.display`, the convention the viewer uses
(radiological: patient right on screen left, anterior on the left in sagittal), so an overlay
never shows a case mirrored against the viewer. Only numpy and matplotlib (object API, no
pyplot state): safe in notebooks, headless jobs and MLflow artifact logging alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from medai_lab.display import PLANES, edge_letters, pixel_size, screen_slice, sliced_axis

# (truth, prediction) colours per label; truth solid, prediction dashed.
_COLOURS = [
    ("#00e000", "#ff3030"),
    ("#00bfff", "#ffd700"),
    ("#ff66ff", "#ff8c00"),
    ("#ffffff", "#a0a0ff"),
]


def overlay_figure(example: Mapping[str, Any], title: str | None = None) -> Any:
    """Axial, coronal and sagittal planes through the labelled region, outlines on the image.

    Parameters
    ----------
    example
        ``image`` (3-D float, RAS voxel order), ``label`` and optionally ``prediction`` (3-D
        int maps of the same shape; without it only the labels are outlined), optional
        ``spacing`` (mm, for aspect ratios), ``labels`` (value -> name), ``case`` and ``dice``
        (for the title) -- as in ``SegmentationModule.val_examples``.
    title
        Figure title; by default the case id and its mean Dice.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    image = np.asarray(example["image"], dtype=np.float32)
    truth = np.asarray(example["label"])
    pred = None if example.get("prediction") is None else np.asarray(example["prediction"])
    shapes = {truth.shape, image.shape, image.shape if pred is None else pred.shape}
    if image.ndim != 3 or len(shapes) > 1:
        raise ValueError(
            f"image, label and prediction must be 3-D of one shape, got {image.shape}, "
            f"{truth.shape}, {None if pred is None else pred.shape}"
        )
    maps = [(truth, 0, "solid")] + ([(pred, 1, "dashed")] if pred is not None else [])
    sx, sy, sz = (float(s) for s in example.get("spacing", (1.0, 1.0, 1.0)))
    spacing = (sx, sy, sz)
    labels = {int(k): str(v) for k, v in (example.get("labels") or {}).items() if int(k)}
    if not labels:
        values = np.unique(np.concatenate([np.unique(m) for m, _, _ in maps]))
        labels = {int(v): str(int(v)) for v in values if v}
    fg = np.argwhere(truth > 0)
    if not len(fg) and pred is not None:
        fg = np.argwhere(pred > 0)
    cursor = fg.mean(axis=0).round().astype(int) if len(fg) else np.array(image.shape) // 2
    lo, hi = np.percentile(image, [1, 99])
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    for ax, plane in zip(fig.subplots(1, 3), PLANES, strict=True):
        index = int(cursor[sliced_axis(plane)])
        width_mm, height_mm = pixel_size(spacing, plane)
        shown = screen_slice(image, plane, index)  # rows top to bottom, as on screen
        ax.imshow(shown, cmap="gray", vmin=lo, vmax=hi, aspect=height_mm / width_mm)
        for n, value in enumerate(labels):
            for arr, which, style in maps:
                mask = screen_slice(arr, plane, index) == value
                if mask.any() and not mask.all():
                    colour = _COLOURS[n % len(_COLOURS)][which]
                    ax.contour(mask, levels=[0.5], colors=[colour], linewidths=1.2,
                               linestyles=style)  # fmt: skip
        _edge_letters(ax, plane)
        ax.set_title(plane)
        ax.set_axis_off()
    handles = []
    for n, name in enumerate(labels.values()):
        c_truth, c_pred = _COLOURS[n % len(_COLOURS)]
        handles.append(Line2D([], [], color=c_truth, label=f"{name} truth"))
        if pred is not None:
            handles.append(Line2D([], [], color=c_pred, ls="--", label=f"{name} prediction"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=max(1, len(handles)), frameon=False
    )
    if title is None:
        dice = example.get("dice")
        title = str(example.get("case", ""))
        if dice is not None:
            title += f"  mean Dice {float(dice):.3f}"
    fig.suptitle(title)
    return fig


def _edge_letters(ax: Any, plane: str) -> None:
    """R/L, A/P, S/I at the panel's edges, as the viewer prints them."""
    left, right, top, bottom = edge_letters(plane)
    style = {"transform": ax.transAxes, "color": "yellow", "fontsize": 9, "fontweight": "bold"}
    ax.text(0.01, 0.5, left, ha="left", va="center", **style)
    ax.text(0.99, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)

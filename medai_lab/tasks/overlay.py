"""Overlay figures of validation cases: three orthogonal planes, truth vs prediction outlines.

Only numpy and matplotlib (object API, no pyplot state): safe in notebooks, headless jobs and
MLflow artifact logging alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

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
        ``image`` (3-D float, RAS voxel order), ``label`` and ``prediction`` (3-D int maps of the
        same shape), optional ``spacing`` (mm, for aspect ratios), ``labels`` (value -> name),
        ``case`` and ``dice`` (for the title) -- as in ``SegmentationModule.val_examples``.
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
    pred = np.asarray(example["prediction"])
    if image.shape != truth.shape or image.shape != pred.shape or image.ndim != 3:
        raise ValueError(
            f"image, label and prediction must be 3-D of one shape, got {image.shape}, "
            f"{truth.shape}, {pred.shape}"
        )
    sx, sy, sz = (float(s) for s in example.get("spacing", (1.0, 1.0, 1.0)))
    labels = {int(k): str(v) for k, v in (example.get("labels") or {}).items() if int(k)}
    if not labels:
        labels = {int(v): str(int(v)) for v in np.union1d(np.unique(truth), np.unique(pred)) if v}
    fg = np.argwhere(truth > 0)
    if not len(fg):
        fg = np.argwhere(pred > 0)
    i, j, k = fg.mean(axis=0).round().astype(int) if len(fg) else np.array(image.shape) // 2
    lo, hi = np.percentile(image, [1, 99])
    # Arrays are RAS: x to the patient's right, y anterior, z superior. Transposed so rows are
    # y (axial) or z (coronal, sagittal); origin="lower" puts anterior/superior on top.
    planes = [
        ("axial", lambda a: a[:, :, k].T, sy / sx, True),
        ("coronal", lambda a: a[:, j, :].T, sz / sx, True),
        ("sagittal", lambda a: a[i, :, :].T, sz / sy, False),
    ]
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (name, cut, aspect, radiological) in zip(axes, planes, strict=True):
        ax.imshow(cut(image), cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=aspect)
        for n, value in enumerate(labels):
            c_truth, c_pred = _COLOURS[n % len(_COLOURS)]
            for arr, colour, style in ((truth, c_truth, "solid"), (pred, c_pred, "dashed")):
                mask = cut(arr) == value
                if mask.any() and not mask.all():
                    ax.contour(
                        mask,
                        levels=[0.5],
                        colors=[colour],
                        linewidths=1.2,
                        linestyles=style,
                        origin="lower",
                    )
        if radiological:
            ax.invert_xaxis()  # patient's right on the viewer's left, as radiologists read
        ax.set_title(name)
        ax.set_axis_off()
    handles = []
    for n, name in enumerate(labels.values()):
        c_truth, c_pred = _COLOURS[n % len(_COLOURS)]
        handles.append(Line2D([], [], color=c_truth, label=f"{name} truth"))
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

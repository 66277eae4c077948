"""Model-assisted segmentation: a click asks a model for a proposal in a region around it.

A model is any callable ``model(image_roi, clicks) -> mask``:

* ``image_roi`` - the image inside the region (x-y-z, RAS+, the image's dtype; HU for CT),
  ``roi`` voxels per axis (fewer where the image is smaller), centred on the last click and
  shifted inside the image near its edges;
* ``clicks`` - ``(n, 3)`` int array of the clicks in ROI voxel coordinates, the last one last;
* ``mask`` - boolean (or 0/1) array of ``image_roi``'s shape: the proposed structure.

A trained template model serves as one too: give a run folder, checkpoint, MLflow run id or a
``.ts`` / ``.onnx`` export (with its sidecar) instead of a callable, and it is loaded once as a
:class:`medai_lab.widgets.assist_model.ModelAssist`, which is also told the image's spacing.

The browser shows the proposal as a preview (PROTOCOL.md "Editing"); accepting it paints it with
the active label as one undo step, rejecting it discards it. The kernel runs the model in a
thread, so the notebook stays responsive.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from medai_lab.errors import MedaiError

if TYPE_CHECKING:
    from medai_lab.widgets.assist_model import ModelAssist

Model = Callable[[np.ndarray, np.ndarray], Any]
ModelSource = Model | str | os.PathLike[str]  # a callable or a model path
ROI = (96, 96, 96)


def roi_box(
    click: Sequence[int], shape: Sequence[int], roi: Sequence[int] = ROI
) -> tuple[int, ...]:
    """``(x0, y0, z0, x1, y1, z1)``: ``roi`` voxels centred on ``click``, inside ``shape``."""
    lo, hi = [], []
    for c, n, r in zip(click, shape, roi, strict=True):
        size = min(int(r), int(n))
        start = min(max(int(c) - size // 2, 0), n - size)
        lo.append(start)
        hi.append(start + size)
    return (*lo, *hi)


def resolve_model(model: ModelSource) -> Model:
    """A callable as it is; a run folder / checkpoint / run id / export path loaded (cached)."""
    if isinstance(model, str | Path | os.PathLike):
        from medai_lab.widgets.assist_model import load_assist

        return load_assist(model)
    if not callable(model):
        kind = type(model).__name__
        raise MedaiError(f"an assist model is a callable or a model path, not {kind}")
    return model


def propose(image: np.ndarray, clicks: Sequence[Sequence[int]], model: ModelSource,
            roi: Sequence[int] = ROI, spacing: Sequence[float] | None = None,
            ) -> tuple[tuple[int, int, int], np.ndarray]:  # fmt: skip
    """Run ``model`` around the last click: ``(origin, mask)`` with ``mask`` in ROI coordinates.

    ``model`` is a callable or a model path (:func:`resolve_model`); ``spacing`` (mm, the
    image's) reaches models that resample (:class:`~medai_lab.widgets.assist_model.ModelAssist`).

    Raises
    ------
    MedaiError
        No click, a click outside the image, a model that cannot be loaded, or the model's
        answer is not a mask of the ROI.
    """
    model = resolve_model(model)
    pts = np.asarray(clicks, dtype=np.int64).reshape(-1, 3)
    if not len(pts):
        raise MedaiError("a proposal needs a click")
    if (pts < 0).any() or (pts >= np.asarray(image.shape[:3])).any():
        raise MedaiError("a click lies outside the image")
    box = roi_box(pts[-1], image.shape[:3], roi)
    origin = np.asarray(box[:3])
    crop = np.asarray(image[box[0] : box[3], box[1] : box[4], box[2] : box[5]])
    inside = ((pts >= origin) & (pts < np.asarray(box[3:]))).all(axis=1)
    try:
        args = (crop.copy(), pts[inside] - origin)  # a copy: the model may write into it
        answer = model(*args, spacing=spacing) if _takes_spacing(model) else model(*args)
    except MedaiError:
        raise
    except Exception as exc:  # the user's model: say what went wrong in one line
        raise MedaiError(f"the model failed: {type(exc).__name__}: {exc}") from None
    mask = np.asarray(answer.detach().cpu().numpy() if hasattr(answer, "detach") else answer)
    mask = np.squeeze(mask) if mask.ndim > 3 else mask
    if mask.shape != crop.shape:
        raise MedaiError(f"the model answered shape {mask.shape} for a region of {crop.shape}")
    binary = mask > 0.5 if mask.dtype.kind == "f" else mask.astype(bool)
    return (int(origin[0]), int(origin[1]), int(origin[2])), binary


def proposal_flat(origin: Sequence[int], mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Flat F-order indices in the whole volume of the mask's voxels."""
    ijk = np.nonzero(mask)
    full = [ijk[a] + int(origin[a]) for a in range(3)]
    return np.ravel_multi_index(full, tuple(shape), order="F")


def _takes_spacing(model: Any) -> TypeGuard[ModelAssist]:
    from medai_lab.widgets.assist_model import ModelAssist

    return isinstance(model, ModelAssist)


def accept_proposal(viewer: Any, clicks: Sequence[Sequence[int]], label: int | None = None) -> int:
    """Headless "click, then Enter": propose around ``clicks`` with ``viewer.assist`` and apply
    the proposal as the browser's accept does (one ``edit`` message of runs, label ``label`` or
    the viewer's ``active_label``). Returns the voxels written.
    """
    from medai_lab.widgets.edits import edit_message

    image = viewer.scene.image
    if viewer.assist is None:
        raise MedaiError("no model: set viewer.assist = model(image_roi, clicks) -> mask")
    origin, mask = propose(image.array, clicks, viewer.assist, viewer.assist_roi, image.spacing)
    value = int(viewer.active_label if label is None else label)
    flat = proposal_flat(origin, mask, image.shape[:3])
    seq = int(viewer.annotations.last_seq) + 1
    content, data = edit_message([(value, flat)], tuple(image.shape[:3]), axis=0, seq=seq)
    viewer._on_message(viewer, content, [data])  # the comm path the browser's edit takes
    if viewer.annotations.last_seq != seq:
        raise MedaiError(f"the proposal was not applied: {viewer.annotations.error}")
    viewer.send({**content, "origin": "kernel"}, [data])  # open views show it as paint() does
    viewer.proposals += 1
    return int(flat.size)

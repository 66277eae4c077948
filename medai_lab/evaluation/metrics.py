"""Per-label segmentation metrics on arrays: Dice, HD95 and NSD (surface Dice).

Conventions
-----------
Surface
    The surface of a mask is its boundary voxels: the mask minus its binary erosion with the
    face-connected (6-neighbour in 3-D) structuring element, with everything outside the array
    counted as background. A voxel is on the surface when at least one face neighbour is outside
    the mask. This is MONAI's ``get_mask_edges`` (scipy's default erosion), so numbers compare.
Distances
    Euclidean, in mm, between voxel centres, using the voxel ``spacing`` along each array axis
    (``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``). They are computed inside the
    bounding box of both masks plus a one-voxel margin: the nearest surface voxel of either mask
    always lies in that box, so cropping changes no distance, only the run time.
HD95
    ``max(P95(d(pred -> truth)), P95(d(truth -> pred)))``: the larger of the two directed 95th
    percentiles (numpy's linear interpolation) of surface-to-surface distances. This is MONAI's
    ``compute_hausdorff_distance(percentile=95, directed=False)``.
NSD
    Normalised surface distance / surface Dice of Nikolov et al. (2021) with voxel-counted
    surfaces: the fraction of surface voxels of *both* masks whose distance to the other surface
    is ``<= tolerance`` (mm). This is MONAI's ``compute_surface_dice(use_subvoxels=False)``.
Empty masks
    Both empty: Dice 1.0, NSD 1.0, HD95 0.0 (nothing to find, nothing found).
    Exactly one empty: Dice 0.0, NSD 0.0, HD95 ``NaN`` (no surface to measure a distance to).
    ``NaN`` rather than ``inf`` so that tables stay numeric; summaries use NaN-aware statistics
    and report how many cases were undefined (see :func:`medai_lab.evaluation.summarize`).

Spacing is the length of each voxel axis; on oblique grids distances stay exact, on sheared
grids (gantry tilt kept in the affine) they are approximate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medai_lab.errors import MedaiError

Tolerance = float | Mapping[int, float]


class EvaluationError(MedaiError):
    """Predictions and references cannot be compared (missing files, mismatched grids, labels)."""


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels of a boolean mask (mask minus its face-connected erosion)."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, dtype=bool)
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    # border_value=0: voxels on the array border are surface, as if the image were padded.
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def dice_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap ``2|P∩T| / (|P| + |T|)`` of two boolean masks (1.0 when both are empty)."""
    pred, truth = _bool_pair(pred, truth)
    n_p, n_t = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    if n_p + n_t == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & truth)) / (n_p + n_t)


def surface_distances(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm: ``(pred -> truth, truth -> pred)``.

    Each array holds, for every surface voxel of the first mask, the distance to the nearest
    surface voxel of the second. Both are empty when either mask is empty.
    """
    pred, truth = _bool_pair(pred, truth)
    sampling = _spacing(spacing, pred.ndim)
    box = _union_box(_box(pred), _box(truth), pred.shape)
    if box is None or not pred.any() or not truth.any():
        return np.zeros(0), np.zeros(0)
    return _cropped_distances(pred[box], truth[box], sampling)


def hausdorff_distance(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], percentile: float = 95.0
) -> float:
    """Symmetric percentile Hausdorff distance in mm (HD95 by default).

    ``max(P(d(pred -> truth)), P(d(truth -> pred)))`` with ``P`` the ``percentile`` (linear
    interpolation) of directed surface distances, as MONAI's ``compute_hausdorff_distance(
    percentile=95, directed=False)``. NaN when exactly one mask is empty, 0.0 when both are.
    """
    return mask_metrics(pred, truth, spacing, percentile=percentile)["hd95"]


def normalized_surface_dice(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], tolerance: float = 1.0
) -> float:
    """NSD / surface Dice at ``tolerance`` mm (see module conventions)."""
    return mask_metrics(pred, truth, spacing, tolerance=tolerance)["nsd"]


def mask_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    tolerance: float = 1.0,
    percentile: float = 95.0,
) -> dict[str, Any]:
    """Dice, HD95, NSD and voxel counts of two boolean masks, from one surface computation.

    Returns
    -------
    dict
        ``dice``, ``hd95``, ``nsd`` (floats) and ``truth_voxels``, ``pred_voxels`` (ints).
    """
    pred, truth = _bool_pair(pred, truth)
    sampling = _spacing(spacing, pred.ndim)
    _check_tolerance(tolerance, "tolerance")
    box = _union_box(_box(pred), _box(truth), pred.shape)
    if box is None:
        return _both_empty()
    return _cropped_metrics(pred[box], truth[box], sampling, tolerance, percentile)


def evaluate_case(
    pred: np.ndarray,
    truth: np.ndarray,
    labels: Mapping[int, str],
    spacing: Sequence[float],
    nsd_tolerance: Tolerance = 1.0,
) -> list[dict[str, Any]]:
    """Metrics of every label of one case.

    Parameters
    ----------
    pred, truth
        Integer label maps of the same shape (bool is read as label 1; float maps must hold whole
        numbers).
    labels
        Label value -> name. Labels absent from both maps get the both-empty convention.
    spacing
        Voxel size in mm along each array axis.
    nsd_tolerance
        NSD tolerance in mm, one for all labels or a dict label -> tolerance covering ``labels``.

    Returns
    -------
    list of dict
        One row per label, in label order: ``label``, ``label_name``, ``dice``, ``hd95``, ``nsd``,
        ``truth_voxels``, ``pred_voxels``.
    """
    if np.shape(pred) != np.shape(truth):
        raise EvaluationError(
            f"prediction shape {np.shape(pred)} differs from reference shape {np.shape(truth)}"
        )
    pred, truth = _label_array(pred, "prediction"), _label_array(truth, "reference")
    sampling = _spacing(spacing, pred.ndim)
    tolerances = _tolerances(nsd_tolerance, labels)
    order = sorted(int(v) for v in labels)
    # One pass per map finds every label's bounding box; per-label work then stays in its box
    # instead of comparing the whole (e.g. 512x512x300) volume once per label.
    pred_boxes, truth_boxes = _label_boxes(pred, order), _label_boxes(truth, order)
    rows = []
    for value in order:
        box = _union_box(pred_boxes[value], truth_boxes[value], pred.shape)
        if box is None:
            metrics = _both_empty()
        else:
            metrics = _cropped_metrics(
                pred[box] == value, truth[box] == value, sampling, tolerances[value], 95.0
            )
        rows.append({"label": value, "label_name": str(labels[value]), **metrics})
    return rows


# --- internals -------------------------------------------------------------------------------


def _cropped_metrics(
    p: np.ndarray, t: np.ndarray, sampling: tuple[float, ...], tolerance: float, percentile: float
) -> dict[str, Any]:
    """Metrics of masks already cropped to their union box (with a one-voxel margin)."""
    n_p, n_t = int(np.count_nonzero(p)), int(np.count_nonzero(t))
    counts = {"truth_voxels": n_t, "pred_voxels": n_p}
    if n_p == 0 and n_t == 0:
        return _both_empty()
    if n_p == 0 or n_t == 0:
        return {"dice": 0.0, "hd95": math.nan, "nsd": 0.0, **counts}
    dice = 2.0 * int(np.count_nonzero(p & t)) / (n_p + n_t)
    d_pt, d_tp = _cropped_distances(p, t, sampling)
    hd = max(float(np.percentile(d_pt, percentile)), float(np.percentile(d_tp, percentile)))
    within = int(np.count_nonzero(d_pt <= tolerance)) + int(np.count_nonzero(d_tp <= tolerance))
    nsd = within / (d_pt.size + d_tp.size)
    return {"dice": dice, "hd95": hd, "nsd": nsd, **counts}


def _cropped_distances(
    p: np.ndarray, t: np.ndarray, sampling: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi

    sp, st = surface(p), surface(t)
    # EDT of the complement: every voxel's distance to the nearest surface voxel of the other mask.
    d_pt = ndi.distance_transform_edt(~st, sampling=sampling)[sp]
    d_tp = ndi.distance_transform_edt(~sp, sampling=sampling)[st]
    return d_pt, d_tp


def _both_empty() -> dict[str, Any]:
    return {"dice": 1.0, "hd95": 0.0, "nsd": 1.0, "truth_voxels": 0, "pred_voxels": 0}


Box = tuple[slice, ...]


def _box(mask: np.ndarray) -> Box | None:
    """Bounding box of a boolean mask, or None when empty."""
    from scipy import ndimage as ndi

    # find_objects wants integers; a bool array viewed as uint8 is a free reinterpretation.
    found = ndi.find_objects(np.ascontiguousarray(mask).view(np.uint8), max_label=1)
    return found[0] if found else None


def _label_boxes(arr: np.ndarray, values: list[int]) -> dict[int, Box | None]:
    """Bounding box of each label value (None where absent)."""
    from scipy import ndimage as ndi

    positive = [v for v in values if v > 0]
    boxes: dict[int, Box | None] = {}
    # find_objects lists boxes for 1..max_label; fall back to masks for 0, negatives, huge values.
    if positive and max(positive) <= 65535:
        found = ndi.find_objects(arr, max_label=max(positive))
        boxes.update({v: found[v - 1] for v in positive})
    for v in values:
        if v not in boxes:
            boxes[v] = _box(arr == v)
    return boxes


def _union_box(a: Box | None, b: Box | None, shape: tuple[int, ...], margin: int = 1) -> Box | None:
    """Smallest box holding ``a`` and ``b``, grown by ``margin`` voxels (clipped to the array).

    The margin keeps a background layer around the masks so the erosion in :func:`surface` sees
    the same neighbourhood as in the full array.
    """
    boxes = [x for x in (a, b) if x is not None]
    if not boxes:
        return None
    return tuple(
        slice(
            max(min(bx[d].start for bx in boxes) - margin, 0),
            min(max(bx[d].stop for bx in boxes) + margin, shape[d]),
        )
        for d in range(len(shape))
    )


def _bool_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise EvaluationError(
            f"prediction shape {pred.shape} differs from reference shape {truth.shape}"
        )
    return pred, truth


def _label_array(arr: np.ndarray, what: str) -> np.ndarray:
    """An integer view/copy of a label map (bool -> uint8, whole-number floats -> int32)."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        return arr.view(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        # Label maps saved as float (or scaled) NIfTI are common; fractional values mean the file
        # is a probability map or was resampled with interpolation, which Dice would hide.
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.rint(arr))):
            raise EvaluationError(f"{what} holds non-integer values; expected a label map")
        return arr.astype(np.int32)
    raise EvaluationError(f"{what} has dtype {arr.dtype}; expected an integer label map")


def _spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    sampling = tuple(float(s) for s in np.atleast_1d(np.asarray(spacing, dtype=np.float64)))
    if len(sampling) == 1:
        sampling = sampling * ndim
    if len(sampling) != ndim or not all(math.isfinite(s) and s > 0 for s in sampling):
        raise EvaluationError(f"spacing must be {ndim} positive numbers (mm), got {spacing!r}")
    return sampling


def _check_tolerance(value: float, what: str) -> float:
    tol = float(value)
    if not (math.isfinite(tol) and tol >= 0):
        raise EvaluationError(f"{what} must be a finite number of mm >= 0, got {value!r}")
    return tol


def _tolerances(nsd_tolerance: Tolerance, labels: Mapping[int, str]) -> dict[int, float]:
    if isinstance(nsd_tolerance, Mapping):
        missing = sorted(int(v) for v in labels if v not in nsd_tolerance)
        if missing:
            raise EvaluationError(f"nsd_tolerance has no value for label(s) {missing}")
        return {int(v): _check_tolerance(nsd_tolerance[v], f"nsd_tolerance[{v}]") for v in labels}
    tol = _check_tolerance(nsd_tolerance, "nsd_tolerance")
    return {int(v): tol for v in labels}

"""Array metrics against cases worked out by hand, the empty-mask conventions, and MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medai_lab.evaluation import (
    EvaluationError,
    dice_score,
    evaluate_case,
    hausdorff_distance,
    mask_metrics,
    normalized_surface_dice,
    surface,
    surface_distances,
)

SPACING = (0.5, 1.0, 2.0)  # anisotropic on purpose: the axis of a shift must matter
N = 10  # cube edge in voxels


def cube(shape=(24, 24, 24), start=(4, 4, 4), n=N, value=1, out=None) -> np.ndarray:
    arr = np.zeros(shape, np.uint8) if out is None else out
    arr[tuple(slice(s, s + n) for s in start)] = value
    return arr


def shifted(arr: np.ndarray, k: int, axis: int) -> np.ndarray:
    return np.roll(arr, k, axis=axis)  # the cube sits well away from the border: no wrap-around


def blob(shape, seed, threshold=0.6, sigma=3.0) -> np.ndarray:
    """A smooth random blob (thresholded smoothed noise), irregular enough to test distances."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random(shape), sigma)
    field = (field - field.min()) / (field.max() - field.min())
    return field > threshold


def test_surface_of_cube_and_slab():
    # A solid n^3 cube: all but the (n-2)^3 interior voxels have a face neighbour outside.
    assert int(surface(cube().astype(bool)).sum()) == N**3 - (N - 2) ** 3  # 488
    slab = np.zeros((8, 8, 8), bool)
    slab[3, 1:7, 1:7] = True  # one voxel thick: every voxel is on the surface
    assert np.array_equal(surface(slab), slab)
    # Voxels on the array border count as surface (outside the array is background).
    full = np.ones((4, 4, 4), bool)
    assert int(surface(full).sum()) == 4**3 - 2**3


def test_identical_cube():
    t = cube()
    [row] = evaluate_case(t, t.copy(), {1: "cube"}, SPACING)
    assert row == {
        "label": 1,
        "label_name": "cube",
        "dice": 1.0,
        "hd95": 0.0,
        "nsd": 1.0,
        "truth_voxels": N**3,
        "pred_voxels": N**3,
    }


@pytest.mark.parametrize(("axis", "k"), [(0, 1), (0, 2), (1, 3), (2, 2), (2, 4)])
def test_cube_shifted_along_one_axis(axis, k):
    """Cube T = [0, n)^3 and P = T shifted by k voxels along ``axis`` (spacing s there).

    Dice: the overlap is (n - k) * n^2 voxels of n^3 each -> (n - k) / n.

    HD95: every P voxel lies at index >= k along the axis, so a voxel on T's trailing face
    (index 0, n^2 of them) is at least k*s from any P voxel, and exactly k*s from P's trailing
    face voxel with the same other indices. No T surface voxel is farther than k*s from P's
    surface: side-face voxels at index >= k lie on P's side faces (distance 0), those at index < k
    are (k - index)*s from them, and voxels on T's leading face are at most k*s from P's leading
    face. So the largest directed distance is k*s, reached by n^2 = 100 of the 488 surface voxels
    (20 %), far more than the top 5 %, so the 95th percentile (linear interpolation between sorted
    positions 462 and 463 of 0..487) is k*s too. By symmetry the same holds from P to T, and
    HD95 = k * s.

    NSD below the smallest spacing (0.5 mm): only distances of exactly 0 count, i.e. voxels on
    both surfaces: the side-ring voxels (4n - 4 per slice) of the n - k shared slices, in both
    directions -> (n - k)(4n - 4) / (n^3 - (n - 2)^3). At tolerance k*s (the largest distance,
    ``<=``) it is 1; just below it, some voxels fall out.
    """
    t = cube()
    p = shifted(t, k, axis)
    s = SPACING[axis]
    [row] = evaluate_case(p, t, {1: "cube"}, SPACING, nsd_tolerance=0.25)
    assert row["dice"] == pytest.approx((N - k) / N)
    assert row["hd95"] == pytest.approx(k * s)
    shared = (N - k) * (4 * N - 4)
    assert row["nsd"] == pytest.approx(shared / (N**3 - (N - 2) ** 3))
    assert row["truth_voxels"] == row["pred_voxels"] == N**3

    assert normalized_surface_dice(p, t, SPACING, tolerance=k * s) == 1.0
    assert normalized_surface_dice(p, t, SPACING, tolerance=k * s - 1e-6) < 1.0
    assert hausdorff_distance(p, t, SPACING) == pytest.approx(k * s)
    # The maximum (HD100) is the same here: the farthest voxels are those 20 %.
    assert hausdorff_distance(p, t, SPACING, percentile=100) == pytest.approx(k * s)


def test_thin_slab_shifted_apart():
    # One voxel thick, shifted by 3 along z (2 mm): no overlap, and every voxel of each slab is
    # exactly 3 * 2 = 6 mm from the nearest voxel of the other (same in-plane indices).
    t = np.zeros((12, 12, 12), bool)
    t[2:10, 2:10, 4] = True
    p = shifted(t, 3, axis=2)
    m = mask_metrics(p, t, SPACING, tolerance=5.9)
    assert m["dice"] == 0.0
    assert m["hd95"] == pytest.approx(6.0)
    assert m["nsd"] == 0.0
    assert normalized_surface_dice(p, t, SPACING, tolerance=6.0) == 1.0
    d_pt, d_tp = surface_distances(p, t, SPACING)
    assert np.allclose(d_pt, 6.0) and np.allclose(d_tp, 6.0) and d_pt.size == 64


def test_both_empty():
    z = np.zeros((8, 8, 8), np.uint8)
    [row] = evaluate_case(z, z, {1: "organ"}, SPACING)
    assert (row["dice"], row["hd95"], row["nsd"]) == (1.0, 0.0, 1.0)
    assert row["truth_voxels"] == row["pred_voxels"] == 0
    assert dice_score(z, z) == 1.0


@pytest.mark.parametrize("empty", ["pred", "truth"])
def test_exactly_one_empty(empty):
    t = cube((16, 16, 16), (3, 3, 3), n=5)
    z = np.zeros_like(t)
    p, t = (z, t) if empty == "pred" else (t, z)
    [row] = evaluate_case(p, t, {1: "organ"}, SPACING)
    assert row["dice"] == 0.0
    assert row["nsd"] == 0.0
    assert math.isnan(row["hd95"])
    assert row["truth_voxels"] + row["pred_voxels"] == 125
    assert surface_distances(p, t, SPACING)[0].size == 0


def test_two_labels_per_label_rows_and_tolerance():
    shape = (40, 24, 24)
    t = cube(shape, (2, 4, 4), value=1)
    cube(shape, (20, 4, 4), value=2, out=t)
    p = t.copy()
    p[p == 2] = 0
    cube(shape, (21, 4, 4), value=2, out=p)  # label 2 shifted by 1 along x (0.5 mm)
    labels = {2: "spleen", 1: "liver", 3: "absent"}
    rows = evaluate_case(p, t, labels, SPACING, nsd_tolerance={1: 1.0, 2: 0.25, 3: 1.0})
    assert [r["label"] for r in rows] == [1, 2, 3]  # label order, whatever the dict order
    liver, spleen, absent = rows
    assert liver["label_name"] == "liver" and liver["dice"] == 1.0 and liver["hd95"] == 0.0
    assert spleen["dice"] == pytest.approx(0.9) and spleen["hd95"] == pytest.approx(0.5)
    assert spleen["nsd"] == pytest.approx(9 * 36 / 488)  # tolerance 0.25 for label 2 only
    assert (absent["dice"], absent["hd95"], absent["nsd"]) == (1.0, 0.0, 1.0)
    # The same labels at one tolerance of 0.5 mm: the shift is within it.
    rows = evaluate_case(p, t, labels, SPACING, nsd_tolerance=0.5)
    assert rows[1]["nsd"] == 1.0
    with pytest.raises(EvaluationError, match=r"no value for label\(s\) \[3\]"):
        evaluate_case(p, t, labels, SPACING, nsd_tolerance={1: 1.0, 2: 1.0})


def test_cropping_changes_nothing():
    # Reference computed on the whole array, without the bounding-box crop.
    from scipy import ndimage as ndi

    p, t = blob((48, 40, 32), seed=1), blob((48, 40, 32), seed=2)
    sp = (0.8, 0.6, 1.7)
    full_pt = ndi.distance_transform_edt(~surface(t), sampling=sp)[surface(p)]
    full_tp = ndi.distance_transform_edt(~surface(p), sampling=sp)[surface(t)]
    d_pt, d_tp = surface_distances(p, t, sp)
    assert np.array_equal(d_pt, full_pt) and np.array_equal(d_tp, full_tp)
    m = mask_metrics(p, t, sp, tolerance=1.5)
    hd = max(np.percentile(full_pt, 95), np.percentile(full_tp, 95))
    assert m["hd95"] == hd
    assert m["nsd"] == ((full_pt <= 1.5).sum() + (full_tp <= 1.5).sum()) / (
        full_pt.size + full_tp.size
    )
    # Same masks placed in a much larger array: same numbers.
    big_p, big_t = np.zeros((120, 90, 70), bool), np.zeros((120, 90, 70), bool)
    big_p[50:98, 30:70, 20:52], big_t[50:98, 30:70, 20:52] = p, t
    assert mask_metrics(big_p, big_t, sp, tolerance=1.5) == m


def test_input_types_and_errors():
    t = cube((16, 16, 16), (3, 3, 3), n=5)
    ref = evaluate_case(t, t, {1: "a"}, (1, 1, 1))
    assert evaluate_case(t.astype(bool), t.astype(np.float32), {1: "a"}, (1, 1, 1)) == ref
    assert evaluate_case(t.astype(np.int64), t, {1: "a"}, 1.0) == ref  # scalar = isotropic
    with pytest.raises(EvaluationError, match="non-integer"):
        evaluate_case(t * 0.5, t, {1: "a"}, (1, 1, 1))
    with pytest.raises(EvaluationError, match="shape"):
        evaluate_case(t[:-1], t, {1: "a"}, (1, 1, 1))
    with pytest.raises(EvaluationError, match="spacing"):
        evaluate_case(t, t, {1: "a"}, (1, 1))
    with pytest.raises(EvaluationError, match="spacing"):
        evaluate_case(t, t, {1: "a"}, (1, 0, 1))
    with pytest.raises(EvaluationError, match="nsd_tolerance"):
        evaluate_case(t, t, {1: "a"}, (1, 1, 1), nsd_tolerance=-1)
    # Label 0 and labels above the fast path's range go through the slow path, same rules.
    big = t.astype(np.int32) * 70000
    [row] = evaluate_case(big, big, {70000: "big"}, (1, 1, 1))
    assert row["dice"] == 1.0 and row["truth_voxels"] == 125
    [row] = evaluate_case(t, t, {0: "background"}, (1, 1, 1))
    assert row["dice"] == 1.0 and row["truth_voxels"] == 16**3 - 125


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation notices
@pytest.mark.parametrize("truth_seed", [11, 12])  # 11: nested, close surfaces; 12: unrelated
def test_agrees_with_monai(truth_seed):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")

    shape, sp, tol = (64, 56, 40), (0.7, 0.9, 2.5), 1.3
    p, t = blob(shape, seed=11), blob(shape, seed=truth_seed, threshold=0.58)

    def onehot(mask: np.ndarray):
        return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))

    m = mask_metrics(p, t, sp, tolerance=tol)
    hd = metrics.compute_hausdorff_distance(
        onehot(p), onehot(t), percentile=95, directed=False, spacing=sp
    )
    nsd = metrics.compute_surface_dice(onehot(p), onehot(t), [tol], spacing=sp)
    # MONAI computes in float32; agreement is far inside one voxel (the smallest spacing).
    assert m["hd95"] == pytest.approx(float(hd[0, 0]), abs=1e-3)
    assert m["nsd"] == pytest.approx(float(nsd[0, 0]), abs=1e-3)
    assert m["hd95"] > 0.5 and 0.0 < m["nsd"] < 1.0  # a non-trivial pair

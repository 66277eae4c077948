"""Contour geometry for the RTSTRUCT reader: patient mm -> voxel indices, slices, even-odd fill.

Everything works in the reference grid's own continuous voxel indices ``(i, j, k)``, so an
oblique or flipped image needs no special case: a contour is projected onto the slice plane by
dropping its ``k`` after checking that it lies on one slice.

Fill rule (the same as plastimatch's ``rasterize_slice``): a voxel is inside when its centre is
inside the polygon. On a scan row ``j`` an edge counts when ``min(j0, j1) <= j < max(j0, j1)``
(its upper end excluded, horizontal edges never), and it toggles every voxel whose ``i`` is
strictly right of the crossing. So a voxel centre exactly on the contour is inside on the low-j
and high-i sides and outside on the others, as in plastimatch 1.9 (which differs only where two
crossings of one row fall on the same voxel column). All contours of one slice are filled
together with the even-odd rule, so a contour inside another is a hole and a contour inside a
hole is an island again (the XOR of the contours; plastimatch does this with
``--xor-contours``).
"""

from __future__ import annotations

import numpy as np

# RAS+ <-> DICOM LPS: x and y change sign.
_LPS_FLIP = np.array([-1.0, -1.0, 1.0])

# Crossings are painted in chunks of slices so the count buffer stays small (about 8 MB).
_CHUNK_VOXELS = 8_000_000


def lps_to_voxel(points_lps: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel indices ``(N, 3)`` of DICOM patient points ``(N, 3)`` in LPS mm."""
    inv = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    ras = np.asarray(points_lps, dtype=np.float64) * _LPS_FLIP
    return ras @ inv[:3, :3].T + inv[:3, 3]


def slice_of(ijk: np.ndarray, step_mm: float, tolerance_mm: float) -> tuple[int, float]:
    """Nearest slice index of a planar contour and its largest distance (mm) from that slice."""
    k = int(np.rint(float(np.mean(ijk[:, 2]))))
    off = float(np.max(np.abs(ijk[:, 2] - k))) * step_mm
    return k, off


def fill_even_odd(
    polygons: list[np.ndarray], slices: np.ndarray, shape: tuple[int, int, int]
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Rasterise closed polygons (even-odd across all polygons of a slice).

    Parameters
    ----------
    polygons
        ``(n, 2)`` arrays of continuous ``(i, j)`` voxel indices, one per contour (closing point
        optional).
    slices
        Slice index ``k`` of each polygon, all within ``0 <= k < shape[2]``.
    shape
        Grid shape ``(ni, nj, nk)``.

    Returns
    -------
    (region, mask) or None
        ``mask`` is a boolean array in ``(k, j, i)`` order covering ``region`` (slices into a
        ``(nk, nj, ni)`` array); ``None`` when no voxel centre is inside.
    """
    ni, nj, _ = shape
    if not polygons:
        return None
    lengths = np.array([len(p) for p in polygons])
    pts = np.concatenate(polygons).astype(np.float64, copy=False)
    starts = np.cumsum(lengths) - lengths
    nxt = np.arange(len(pts)) + 1
    nxt[starts + lengths - 1] = starts  # each polygon closes on its first point
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = pts[nxt, 0], pts[nxt, 1]
    kk = np.repeat(np.asarray(slices, dtype=np.int64), lengths)

    keep = y0 != y1
    x0, y0, x1, y1, kk = x0[keep], y0[keep], x1[keep], y1[keep], kk[keep]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    row0 = np.clip(np.ceil(lo), 0, nj).astype(np.int64)
    row1 = np.clip(np.ceil(hi), 0, nj).astype(np.int64)  # rows lo <= j < hi
    count = np.maximum(row1 - row0, 0)
    total = int(count.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(count)), count)
    rows = row0[edge] + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    slope = (x1 - x0) / (y1 - y0)
    xs = x0[edge] + (rows - y0[edge]) * slope[edge]
    cols = np.clip(np.floor(xs) + 1, 0, ni).astype(np.int64)  # centres strictly right of xs
    ks = kk[edge]

    # Bounding box of everything that can be inside: rows with crossings, columns between them.
    k_lo, k_hi = int(ks.min()), int(ks.max()) + 1
    j_lo, j_hi = int(rows.min()), int(rows.max()) + 1
    i_lo, i_hi = int(cols.min()), int(cols.max())
    if i_hi <= i_lo:
        return None
    width = i_hi - i_lo + 1  # one spare column takes the toggles at i_hi
    mask = np.empty((k_hi - k_lo, j_hi - j_lo, i_hi - i_lo), dtype=bool)
    plane = (j_hi - j_lo) * width
    order = np.argsort(ks, kind="stable")
    ks, rows, cols = ks[order], rows[order], cols[order]
    step = max(1, _CHUNK_VOXELS // plane)
    for c0 in range(k_lo, k_hi, step):
        c1 = min(c0 + step, k_hi)
        a, b = np.searchsorted(ks, [c0, c1])
        flat = ((ks[a:b] - c0) * (j_hi - j_lo) + (rows[a:b] - j_lo)) * width + (cols[a:b] - i_lo)
        toggles = np.bincount(flat, minlength=(c1 - c0) * plane).astype(np.uint8)
        # Parity of the toggles left of (and at) each voxel; uint8 wrap-around keeps parity.
        parity = np.cumsum(toggles.reshape(c1 - c0, j_hi - j_lo, width), axis=2, dtype=np.uint8)
        mask[c0 - k_lo : c1 - k_lo] = (parity[:, :, :-1] & 1).astype(bool)
    if not mask.any():
        return None
    return (slice(k_lo, k_hi), slice(j_lo, j_hi), slice(i_lo, i_hi)), mask


def polyline_voxels(ijk: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Voxels ``(n, 3)`` an open polyline passes through (sampled every 1/4 voxel, nearest)."""
    pts = np.asarray(ijk, dtype=np.float64)
    if len(pts) == 1:
        samples = pts
    else:
        seg = np.diff(pts, axis=0)
        n = np.maximum(np.ceil(np.abs(seg).max(axis=1) * 4).astype(np.int64), 1)
        t = np.concatenate([np.arange(m) / m for m in n])
        base = np.repeat(np.arange(len(seg)), n)
        samples = np.concatenate([pts[base] + seg[base] * t[:, None], pts[-1:]])
    vox = np.rint(samples).astype(np.int64)
    inside = np.all((vox >= 0) & (vox < np.array(shape)), axis=1)
    return np.unique(vox[inside], axis=0)


def nearest_plane_only(planes: np.ndarray, slices: np.ndarray) -> np.ndarray:
    """Which contours to keep: on each slice, only those of the plane nearest to it.

    Structure sets drawn on a finer slice spacing than the reference grid put contours from
    several planes onto one slice; filling them together (even-odd) would cut holes.
    """
    keep = np.ones(len(planes), dtype=bool)
    if len(planes) < 2:
        return keep
    best: dict[int, float] = {}
    for plane, k in zip(planes, slices, strict=True):
        if int(k) not in best or abs(plane - k) < abs(best[int(k)] - k):
            best[int(k)] = float(plane)
    for n, (plane, k) in enumerate(zip(planes, slices, strict=True)):
        keep[n] = abs(plane - best[int(k)]) <= 1e-3  # same plane, within rounding of DS text
    return keep


def voxel_part(vox: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Voxels ``(n, 3)`` in i-j-k as a (region, mask) pair in the painter's (k, j, i) order."""
    lo, hi = vox.min(axis=0), vox.max(axis=0) + 1
    mask = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), dtype=bool)
    mask[vox[:, 2] - lo[2], vox[:, 1] - lo[1], vox[:, 0] - lo[0]] = True
    return (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0])), mask

"""ROI statistics per label: voxel count, volume in mL, mean / SD / min / max of the image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def label_stats(
    image: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    names: Mapping[int, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per non-zero label value present in ``labels`` (same grid as ``image``).

    Returns
    -------
    list of dict
        ``value``, ``name``, ``voxels``, ``volume_ml`` (voxels x voxel volume), and of the image
        values inside the label ``mean``, ``sd`` (population SD, ddof=0), ``min``, ``max`` (HU
        for CT).
    """
    if image.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} are not on the image grid {image.shape}")
    lab = np.asarray(labels).ravel(order="F").astype(np.int64, copy=False)
    img = np.asarray(image).ravel(order="F").astype(np.float64, copy=False)
    if lab.size and lab.min() < 0:
        raise ValueError("label values must not be negative")
    n = np.bincount(lab)
    s1 = np.bincount(lab, weights=img, minlength=n.size)
    s2 = np.bincount(lab, weights=img * img, minlength=n.size)
    present = [int(v) for v in np.flatnonzero(n) if v != 0]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    rows = []
    if present:
        from scipy import ndimage  # only when there is something to measure

        lo = ndimage.minimum(img, lab, present)
        hi = ndimage.maximum(img, lab, present)
    for i, v in enumerate(present):
        mean = s1[v] / n[v]
        var = max(0.0, s2[v] / n[v] - mean * mean)
        rows.append({
            "value": v, "name": (names or {}).get(v, f"label {v}"), "voxels": int(n[v]),
            "volume_ml": float(n[v] * voxel_ml), "mean": float(mean), "sd": float(np.sqrt(var)),
            "min": float(lo[i]), "max": float(hi[i]),
        })  # fmt: skip
    return rows

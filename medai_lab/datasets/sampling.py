"""Patch-sampling transforms that count label voxels once, in the cache, not on every draw.

:class:`CountVoxelsd` runs with the cached preprocessing and stores per-row voxel counts for
the configured sampler (per class for ``data.crop: classes``, foreground / background for
``posneg``); :class:`VoxelIndicesd` runs on every draw and hands MONAI's sampler
:class:`~medai_lab.datasets.voxel_index.VoxelIndex` objects built from them (see that
module for why the patches are exactly MONAI's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monai.transforms import MapTransform

from medai_lab.datasets.voxel_index import (
    class_counts,
    class_indices,
    posneg_counts,
    posneg_indices,
)

COUNTS_KEY = "label_voxel_counts"
INDEX_KEYS = {"classes": ("label_class_voxels",), "posneg": ("label_fg_voxels", "label_bg_voxels")}
THRESHOLD = 0.0  # posneg background: image above this in any channel (as the sampler is set)


class CountVoxelsd(MapTransform):
    """Store the sampler's per-row voxel counts under :data:`COUNTS_KEY` (cacheable)."""

    def __init__(self, crop: str, num_classes: int) -> None:
        super().__init__(["label"])
        self.crop, self.num_classes = crop, int(num_classes)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        if self.crop == "classes":
            out[COUNTS_KEY] = class_counts(out["label"], self.num_classes)
        else:
            out[COUNTS_KEY] = posneg_counts(out["label"], out["image"], THRESHOLD)
        return out


class VoxelIndicesd(MapTransform):
    """Turn the cached counts into the sampler's index keys (:data:`INDEX_KEYS`).

    The counts leave the item here, so they are neither cropped nor batched.
    """

    def __init__(self, crop: str) -> None:
        super().__init__(["label"])
        self.crop = crop

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        counts = out.pop(COUNTS_KEY)
        if self.crop == "classes":
            (key,) = INDEX_KEYS["classes"]
            out[key] = class_indices(out["label"], counts)
        else:
            fg_key, bg_key = INDEX_KEYS["posneg"]
            out[fg_key], out[bg_key] = posneg_indices(out["label"], out["image"], THRESHOLD, counts)
        return out

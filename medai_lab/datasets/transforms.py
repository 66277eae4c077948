"""MONAI transform pipelines for the segmentation tasks, built from a composed config.

The pipeline is split in two so that caching is exact: :func:`preprocess_transforms` is
deterministic (load, RAS, resample, crop to the body, intensity) and is what CacheDataset /
PersistentDataset store; :func:`augment_transforms` is random and runs on every draw, seeded per
(epoch, item) by :class:`medai_lab.datasets.msd.SeededAugmentDataset`.

Importing this module imports MONAI.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    RandCropByLabelClassesd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandShiftIntensityd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialPadd,
)

from medai_lab.errors import MedaiError

KEYS = ("image", "label")


def _above(x: Any, threshold: float) -> Any:
    """Foreground selector for CropForegroundd (module level: picklable for worker processes)."""
    return x > threshold


def intensity_transform(task: Mapping[str, Any]) -> Any:
    """CT window scaled to [0, 1] (clipped) or MR z-score over non-zero voxels."""
    intensity = task["intensity"]
    mode = intensity.get("mode")
    if mode == "ct_window":
        return ScaleIntensityRanged(
            keys="image",
            a_min=float(intensity["a_min"]),
            a_max=float(intensity["a_max"]),
            b_min=0.0,
            b_max=1.0,
            clip=True,
        )
    if mode == "zscore":
        return NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True)
    raise MedaiError(f"task.intensity.mode must be ct_window or zscore, got {mode!r}")


def preprocess_transforms(config: Mapping[str, Any]) -> Compose:
    """Deterministic part: image and label on the target grid, body-cropped, normalised."""
    task = config["task"]
    threshold = task.get("foreground_threshold")
    # Cropping happens before normalisation so the threshold is in scanner units (HU for CT).
    select = partial(_above, threshold=float(threshold)) if threshold is not None else None
    crop_kwargs = {"select_fn": select} if select is not None else {}
    return Compose(
        [
            LoadImaged(keys=KEYS, image_only=True),
            EnsureChannelFirstd(keys=KEYS),
            Orientationd(keys=KEYS, axcodes="RAS", labels=None),  # labels from the image space
            Spacingd(
                keys=KEYS,
                pixdim=[float(s) for s in task["spacing"]],
                mode=("bilinear", "nearest"),
                dtype=np.float32,  # float64 (the default) doubles memory for no gain
            ),
            CropForegroundd(
                keys=KEYS, source_key="image", margin=2, allow_smaller=True, **crop_kwargs
            ),
            intensity_transform(task),
            EnsureTyped(keys="image", dtype=np.float32),
            EnsureTyped(keys="label", dtype=np.uint8),
        ]
    )


def augment_transforms(config: Mapping[str, Any]) -> Compose:
    """Random part: label-balanced patches, flips, quarter turns, intensity shifts."""
    task, data = config["task"], config["data"]
    patch = [int(p) for p in task["patch_size"]]
    aug = data["augment"]
    steps: list[Any] = [
        # Volumes smaller than a patch (after cropping to the body) are padded, never rejected.
        SpatialPadd(keys=KEYS, spatial_size=patch),
        _patch_sampler(config, patch),
    ]
    if float(aug["flip_prob"]) > 0:
        steps += [
            RandFlipd(keys=KEYS, prob=float(aug["flip_prob"]), spatial_axis=int(a))
            for a in aug["flip_axes"]
        ]
    if float(aug["rot90_prob"]) > 0:
        steps.append(RandRotate90d(keys=KEYS, prob=float(aug["rot90_prob"]), spatial_axes=(0, 1)))
    if float(aug["intensity_shift"]) > 0 and float(aug["intensity_prob"]) > 0:
        steps.append(
            RandShiftIntensityd(
                keys="image",
                offsets=float(aug["intensity_shift"]),
                prob=float(aug["intensity_prob"]),
            )
        )
    # Plain tensors for training: metadata tracking costs time on every op and is not needed.
    steps.append(EnsureTyped(keys=KEYS, track_meta=False))
    return Compose(steps)


def _patch_sampler(config: Mapping[str, Any], patch: list[int]) -> Any:
    """Foreground/background-balanced (posneg) or per-label-balanced (classes) patch centres."""
    data = config["data"]
    n = int(data["samples_per_volume"])
    if data["crop"] == "posneg":
        return RandCropByPosNegLabeld(
            keys=KEYS,
            label_key="label",
            spatial_size=patch,
            pos=float(data["pos"]),
            neg=float(data["neg"]),
            num_samples=n,
            image_key="image",
            image_threshold=0.0,
        )
    if data["crop"] == "classes":
        # Small structures (nodules, tumours, atrium) get as many patch centres as big organs.
        num_classes = max(int(k) for k in config["task"]["labels"]) + 1
        ratios = data.get("class_ratios") or [1.0] * num_classes
        if len(ratios) != num_classes:
            raise MedaiError(f"data.class_ratios needs {num_classes} values, got {ratios}")
        return RandCropByLabelClassesd(
            keys=KEYS,
            label_key="label",
            spatial_size=patch,
            ratios=[float(r) for r in ratios],
            num_classes=num_classes,
            num_samples=n,
            warn=False,  # a case without some label just gets no patches centred on it
        )
    raise MedaiError(f"data.crop must be posneg or classes, got {data['crop']!r}")


def train_transforms(config: Mapping[str, Any]) -> Compose:
    """The whole training pipeline (preprocessing, then augmentation) as one Compose."""
    return Compose(
        [*preprocess_transforms(config).transforms, *augment_transforms(config).transforms]
    )


def val_transforms(config: Mapping[str, Any]) -> Compose:
    """Validation: preprocessing only; whole volumes go to sliding-window inference."""
    return preprocess_transforms(config)

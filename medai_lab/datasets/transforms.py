"""MONAI transform pipelines for the segmentation tasks, built from a composed config.

The pipeline is split in two so that caching is exact: :func:`preprocess_transforms` is
deterministic (load, RAS, resample, crop to the body, intensity) and is what CacheDataset /
PersistentDataset store (for training with :func:`sampling_prep_transforms`: padding and class
counts); :func:`augment_transforms` is random and runs on every draw, reseeded
from (seed, epoch, item) by :class:`SeededAugmentDataset`, with :class:`EpochSampler` handing it
the epoch.

Importing this module imports MONAI.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
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
from torch.utils.data import Dataset, Sampler

from medai_lab.datasets.frames import parse_frames, select_frames, sidecar_axis
from medai_lab.datasets.msd import case_id
from medai_lab.datasets.sampling import INDEX_KEYS, THRESHOLD, CountVoxelsd, VoxelIndicesd
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


class SelectFramesd(MapTransform):
    """Keep the channels of a 4-D image that the frame choice names (see :mod:`..frames`).

    Runs after ``EnsureChannelFirstd``, when a 4-D NIfTI's frames are the channels. Choices
    by axis value read the sidecar JSON beside the image file (its ``Axis4`` values).
    """

    def __init__(self, frames: Any, keys: Sequence[str] = ("image",)) -> None:
        super().__init__(keys)
        self.frames = frames
        parse_frames(frames)  # a bad choice fails when the pipeline is built, not mid-epoch

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for key in self.key_iterator(out):
            img = out[key]
            source = str(getattr(img, "meta", {}).get("filename_or_obj", "") or key)
            by_value = isinstance(parse_frames(self.frames), tuple) and img.shape[0] > 1
            axis = sidecar_axis(source) if by_value else None
            index = select_frames(self.frames, int(img.shape[0]), axis, case=case_id(source))
            if index != list(range(int(img.shape[0]))):
                out[key] = img[index]
        return out


def preprocess_transforms(
    config: Mapping[str, Any], keys: Sequence[str] = KEYS, frames: Any = None
) -> Compose:
    """Deterministic part: image and label on the target grid, body-cropped, normalised.

    ``keys=("image",)`` gives the inference pipeline (invertible with MONAI's ``Invertd``).
    A 4-D image's frames become channels; ``frames`` (default ``data.frames`` of the config,
    else all) picks which (:mod:`medai_lab.datasets.frames`).
    """
    keys = tuple(keys)
    if frames is None:
        frames = (config.get("data") or {}).get("frames")
    with_label = "label" in keys
    task = config["task"]
    threshold = task.get("foreground_threshold")
    # Cropping happens before normalisation so the threshold is in scanner units (HU for CT).
    select = partial(_above, threshold=float(threshold)) if threshold is not None else None
    crop_kwargs = {"select_fn": select} if select is not None else {}
    return Compose(
        [
            LoadImaged(keys=keys, image_only=True),
            EnsureChannelFirstd(keys=keys),
            *([SelectFramesd(frames)] if parse_frames(frames) != "all" else []),
            Orientationd(keys=keys, axcodes="RAS", labels=None),  # labels from the image space
            Spacingd(
                keys=keys,
                pixdim=[float(s) for s in task["spacing"]],
                mode=tuple("nearest" if k == "label" else "bilinear" for k in keys),
                dtype=np.float32,  # float64 (the default) doubles memory for no gain
            ),
            CropForegroundd(
                keys=keys, source_key="image", margin=2, allow_smaller=True, **crop_kwargs
            ),
            intensity_transform(task),
            EnsureTyped(keys="image", dtype=np.float32),
            *([EnsureTyped(keys="label", dtype=np.uint8)] if with_label else []),
        ]
    )


def sampling_prep_transforms(config: Mapping[str, Any]) -> list[Any]:
    """The deterministic start of patch sampling, cached with the preprocessed volumes.

    Padding to the patch size, and the per-row voxel counts (per class, or foreground and
    background) that let a draw find its patch centres without a pass over the label
    (:mod:`medai_lab.datasets.sampling`). Use with ``augment_transforms(config, prepared=True)``.
    """
    patch = [int(p) for p in config["task"]["patch_size"]]
    # Volumes smaller than a patch (after cropping to the body) are padded, never rejected.
    crop = config["data"]["crop"]
    _check_crop(crop)
    return [SpatialPadd(keys=KEYS, spatial_size=patch), CountVoxelsd(crop, _num_classes(config))]


def augment_transforms(config: Mapping[str, Any], prepared: bool = False) -> Compose:
    """Random part: label-balanced patches, flips, quarter turns, intensity shifts.

    ``prepared``: the items went through :func:`sampling_prep_transforms` (cached), so the
    padding is done and class voxels are found from the cached counts; the patches drawn
    are the same, for the same random state, as without.
    """
    task, data = config["task"], config["data"]
    patch = [int(p) for p in task["patch_size"]]
    aug = data["augment"]
    steps: list[Any] = []
    if not prepared:
        steps.append(SpatialPadd(keys=KEYS, spatial_size=patch))
    else:
        steps.append(VoxelIndicesd(data["crop"]))
    steps.append(_patch_sampler(config, patch, prepared))
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


def _num_classes(config: Mapping[str, Any]) -> int:
    return max(int(k) for k in config["task"]["labels"]) + 1


def _check_crop(crop: str) -> None:
    if crop not in INDEX_KEYS:
        raise MedaiError(f"data.crop must be posneg or classes, got {crop!r}")


def _patch_sampler(config: Mapping[str, Any], patch: list[int], prepared: bool) -> Any:
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
            image_threshold=THRESHOLD,
            fg_indices_key=INDEX_KEYS["posneg"][0] if prepared else None,
            bg_indices_key=INDEX_KEYS["posneg"][1] if prepared else None,
        )
    if data["crop"] == "classes":
        # Small structures (nodules, tumours, atrium) get as many patch centres as big organs.
        num_classes = _num_classes(config)
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
            indices_key=INDEX_KEYS["classes"][0] if prepared else None,
        )
    raise MedaiError(f"data.crop must be posneg or classes, got {data['crop']!r}")


def train_transforms(config: Mapping[str, Any]) -> Compose:
    """The whole training pipeline (preprocessing, then augmentation) as one Compose.

    Plain MONAI transforms only (what a hand-written loop would use); the template caches
    :func:`sampling_prep_transforms` as well and draws with ``prepared=True``.
    """
    return Compose(
        [*preprocess_transforms(config).transforms, *augment_transforms(config).transforms]
    )


def val_transforms(config: Mapping[str, Any]) -> Compose:
    """Validation: preprocessing only; whole volumes go to sliding-window inference."""
    return preprocess_transforms(config)


class EpochSampler(Sampler):
    """Seeded permutation per epoch, sharded across ranks; yields ``(epoch, index)``.

    Lightning calls :meth:`set_epoch` before every epoch (also after a resume), so the order
    of epoch ``e`` depends on ``(seed, e)`` only. The epoch travels with each index to
    :class:`SeededAugmentDataset`, also into worker processes. Ranks get equal shares (the
    permutation wraps around), as DDP needs the same number of steps everywhere.
    """

    def __init__(
        self, size: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.size, self.seed, self.shuffle = int(size), int(seed), bool(shuffle)
        self.rank, self.world_size, self.epoch = int(rank), max(1, int(world_size)), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        order = np.resize(order, len(self) * self.world_size)
        for index in order[self.rank :: self.world_size]:
            yield (self.epoch, int(index))


class SeededAugmentDataset(Dataset):
    """Applies random ``transform`` to ``base[i]`` with a seed drawn from (seed, epoch, i)."""

    def __init__(self, base: Any, transform: Any, seed: int, copy_items: bool) -> None:
        self.base, self.transform, self.seed = base, transform, int(seed)
        self.copy_items = copy_items  # cached items must not be touched by augmentation
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Any) -> Any:
        epoch, index = key if isinstance(key, tuple) else (0, int(key))
        item = self.base[index]
        if self.copy_items:
            item = copy.deepcopy(item)
        transform = _thread_copy(self.transform, self._local)
        seed = np.random.SeedSequence([self.seed, int(epoch), int(index)]).generate_state(1)
        transform.set_random_state(seed=int(seed[0]))
        return transform(item)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local")  # thread-local copies do not travel to worker processes
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()


def _thread_copy(obj: Any, local: threading.local) -> Any:
    """A per-thread deep copy of ``obj`` (random transforms carry state)."""
    mine = getattr(local, "obj", None)
    if mine is None:
        mine = local.obj = copy.deepcopy(obj)
    return mine

"""Voxels found from cached row counts: MONAI's indices, and MONAI's patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose, RandCropByLabelClassesd
from monai.transforms.utils import map_binary_to_indices, map_classes_to_indices

from medai_lab.datasets.msd import find_cases
from medai_lab.datasets.phantom import write_phantom_dataset
from medai_lab.datasets.transforms import (
    augment_transforms,
    preprocess_transforms,
    sampling_prep_transforms,
)
from medai_lab.datasets.voxel_index import (
    class_counts,
    class_indices,
    posneg_counts,
    posneg_indices,
)
from medai_lab.tasks import compose


def _listed(index) -> list[int]:
    return [index[i] for i in range(len(index))]


@pytest.mark.parametrize("shape", [(1, 7, 5, 9), (1, 4, 4, 1), (1, 1, 1, 30)])
def test_class_voxels_are_monais_in_monais_order(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    label = rng.choice(4, size=shape, p=[0.7, 0.2, 0.1, 0.0]).astype(np.uint8)
    ours = class_indices(label, class_counts(label, 4))
    for index, expect in zip(ours, map_classes_to_indices(label, 4), strict=True):
        assert len(index) == len(expect) and _listed(index) == np.asarray(expect).tolist()
        if len(expect):
            assert index[-1] == expect[-1]
        with pytest.raises(IndexError):
            index[len(expect)]


@pytest.mark.parametrize("channels", [1, 3])
def test_foreground_and_background_are_monais(channels: int) -> None:
    """Background: label 0 where any image channel is above the threshold."""
    rng = np.random.default_rng(channels)
    label = rng.choice(3, size=(1, 9, 6, 11), p=[0.8, 0.15, 0.05]).astype(np.uint8)
    image = rng.normal(0.2, 0.5, size=(channels, 9, 6, 11)).astype(np.float32)
    fg, bg = posneg_indices(label, image, 0.0, posneg_counts(label, image, 0.0))
    want_fg, want_bg = map_binary_to_indices(label, image, 0.0)
    assert _listed(fg) == np.asarray(want_fg).tolist()
    assert _listed(bg) == np.asarray(want_bg).tolist()
    assert 0 < len(bg) < label.size - len(fg)  # the threshold really excludes voxels


def test_counts_of_another_label_are_refused() -> None:
    label = np.zeros((1, 4, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        class_indices(label, class_counts(np.zeros((1, 4, 5, 4)), 1))


def test_monai_draws_the_same_centres_from_them() -> None:
    """RandCropByLabelClassesd with our indices = with the indices it computes itself."""
    rng = np.random.default_rng(5)
    label = torch.as_tensor(rng.choice(3, size=(1, 20, 16, 12), p=[0.9, 0.08, 0.02]))
    kw = {"keys": "label", "label_key": "label", "spatial_size": (6, 6, 4), "num_classes": 3}
    plain = RandCropByLabelClassesd(ratios=[1, 1, 2], num_samples=6, warn=False, **kw)
    ours = RandCropByLabelClassesd(
        ratios=[1, 1, 2], num_samples=6, warn=False, indices_key="ix", **kw
    )
    for seed in range(5):
        plain.set_random_state(seed)
        ours.set_random_state(seed)
        a = plain({"label": label})
        ix = class_indices(label.numpy(), class_counts(label.numpy(), 3))
        b = ours({"label": label, "ix": ix})
        assert all(torch.equal(x["label"], y["label"]) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("crop", ["classes", "posneg"])
def test_the_templates_cached_sampling_draws_the_plain_pipelines_patches(
    tmp_path: Path, crop: str
) -> None:
    """Padding and counts cached, indices from the counts: the same patches, seed for seed."""
    msd = write_phantom_dataset(
        tmp_path / "msd", "liver", 2, shape=(40, 36, 20), spacing=(2.0, 2.0, 3.0), progress=False
    )
    cfg = compose("liver", "cpu", ["data.cache=none", f"data.crop={crop}"])
    pre = preprocess_transforms(cfg)
    prepared = Compose([*pre.transforms, *sampling_prep_transforms(cfg)])
    plain_aug, fast_aug = augment_transforms(cfg), augment_transforms(cfg, prepared=True)
    for case in find_cases(msd):
        item, cached = pre(dict(case)), prepared(dict(case))
        for seed in range(3):
            plain_aug.set_random_state(seed)
            fast_aug.set_random_state(seed)
            a, b = plain_aug(dict(item)), fast_aug(dict(cached))
            assert len(a) == len(b) == int(cfg["data"]["samples_per_volume"])
            for x, y in zip(a, b, strict=True):
                assert set(x) == set(y)  # the counts do not travel into the batch
                assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])

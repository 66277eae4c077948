"""Class voxels found from cached row counts: MONAI's indices, and MONAI's patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Compose, RandCropByLabelClassesd

from medai_lab.datasets.msd import find_cases
from medai_lab.datasets.phantom import write_phantom_dataset
from medai_lab.datasets.transforms import (
    augment_transforms,
    preprocess_transforms,
    sampling_prep_transforms,
)
from medai_lab.datasets.voxel_index import VoxelIndex, row_counts
from medai_lab.tasks import compose


@pytest.mark.parametrize("shape", [(1, 7, 5, 9), (1, 4, 4, 1), (1, 1, 1, 30)])
def test_same_values_in_the_same_order_as_nonzero(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    label = rng.choice(4, size=shape, p=[0.7, 0.2, 0.1, 0.0]).astype(np.uint8)
    counts = row_counts(label, 4)
    for c in range(4):
        expect = np.flatnonzero(label.ravel() == c)
        index = VoxelIndex(label, c, counts[c])
        assert len(index) == len(expect)
        assert [index[i] for i in range(len(index))] == expect.tolist()
        if len(expect):
            assert index[-1] == expect[-1] and index[1:3] == expect[1:3].tolist()
        with pytest.raises(IndexError):
            index[len(expect)]


def test_counts_of_another_label_are_refused() -> None:
    label = np.zeros((1, 4, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        VoxelIndex(label, 0, row_counts(np.zeros((1, 4, 5, 4)), 1)[0])


def test_monai_draws_the_same_centres_from_it() -> None:
    """RandCropByLabelClassesd with our indices = with the indices it computes itself."""
    rng = np.random.default_rng(5)
    label = torch.as_tensor(rng.choice(3, size=(1, 20, 16, 12), p=[0.9, 0.08, 0.02]))
    counts = row_counts(label.numpy(), 3)
    kw = {"keys": "label", "label_key": "label", "spatial_size": (6, 6, 4), "num_classes": 3}
    plain = RandCropByLabelClassesd(ratios=[1, 1, 2], num_samples=6, warn=False, **kw)
    ours = RandCropByLabelClassesd(
        ratios=[1, 1, 2], num_samples=6, warn=False, indices_key="ix", **kw
    )
    for seed in range(5):
        plain.set_random_state(seed)
        ours.set_random_state(seed)
        a = plain({"label": label})
        ix = [VoxelIndex(label.numpy(), c, counts[c]) for c in range(3)]
        b = ours({"label": label, "ix": ix})
        assert [torch.equal(x["label"], y["label"]) for x, y in zip(a, b, strict=True)] == [
            True
        ] * 6


def test_the_templates_cached_sampling_draws_the_plain_pipelines_patches(tmp_path: Path) -> None:
    """Liver cpu preset (class-balanced crops): padding and counts cached, same patches."""
    msd = write_phantom_dataset(
        tmp_path / "msd", "liver", 2, shape=(40, 36, 20), spacing=(2.0, 2.0, 3.0), progress=False
    )
    cfg = compose("liver", "cpu", ["data.cache=none"])
    assert cfg["data"]["crop"] == "classes"
    pre = preprocess_transforms(cfg)
    prepared = Compose([*pre.transforms, *sampling_prep_transforms(cfg)])
    plain_aug, fast_aug = augment_transforms(cfg), augment_transforms(cfg, prepared=True)
    for case in find_cases(msd):
        item, cached = pre(dict(case)), prepared(dict(case))
        assert "label_class_counts" in cached
        for seed in range(3):
            plain_aug.set_random_state(seed)
            fast_aug.set_random_state(seed)
            a, b = plain_aug(dict(item)), fast_aug(dict(cached))
            assert len(a) == len(b) == int(cfg["data"]["samples_per_volume"])
            for x, y in zip(a, b, strict=True):
                assert set(x) == set(y)  # the counts do not travel into the batch
                assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])

"""Finding, checking and splitting cases; seeded sampling and augmentation; bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medai_lab.datasets.msd import (
    DataPathError,
    DatasetError,
    EmptyDatasetError,
    LabelShapeError,
    case_id,
    check_cases,
    dataset_labels,
    find_cases,
    split_cases,
)
from medai_lab.errors import MedaiError
from medai_lab.tasks import compose


def test_msd_folder_and_csv_manifest_list_the_same_cases(phantoms, tmp_path):
    msd = phantoms("lung", 3)
    cases = find_cases(msd)
    assert [c["case"] for c in cases] == ["lung_000", "lung_001", "lung_002"]
    assert all(Path(c["image"]).is_file() and Path(c["label"]).is_file() for c in cases)
    check_cases(cases)
    assert dataset_labels(msd) == {1: "lung", 2: "nodule"}

    # Plain imagesTr/labelsTr folder (no dataset.json), with a macOS resource-fork file.
    plain = tmp_path / "plain"
    shutil.copytree(msd, plain)
    (plain / "dataset.json").unlink()
    (plain / "imagesTr" / "._lung_000.nii.gz").write_bytes(b"junk")
    assert [(c["case"], Path(c["image"]).name) for c in find_cases(plain)] == [
        (c["case"], Path(c["image"]).name) for c in cases
    ]

    # CSV manifest with paths relative to the CSV, in any order.
    manifest = tmp_path / "cohort" / "manifest.csv"
    manifest.parent.mkdir()
    rows = ["label,image"] + [
        f"../plain/labelsTr/{c['case']}.nii.gz,../plain/imagesTr/{c['case']}.nii.gz"
        for c in reversed(cases)
    ]
    manifest.write_text("\n".join(rows) + "\n")
    from_csv = find_cases(manifest)
    assert [c["case"] for c in from_csv] == [c["case"] for c in cases]
    assert all(Path(c["image"]).is_file() for c in from_csv)


def test_case_ids():
    assert case_id("/x/imagesTr/lung_001.nii.gz") == "lung_001"
    assert case_id("la_003_0000.nii.gz") == "la_003"  # nnU-Net channel suffix
    assert case_id("case.nii") == "case"


def test_split_is_seeded_disjoint_and_complete():
    cases = [{"case": f"c{i:02d}", "image": "", "label": ""} for i in range(20)]
    train, val = split_cases(cases, 0.2, seed=0)
    assert len(val) == 4 and len(train) == 16
    assert {c["case"] for c in train} | {c["case"] for c in val} == {c["case"] for c in cases}
    assert not {c["case"] for c in train} & {c["case"] for c in val}
    assert split_cases(list(reversed(cases)), 0.2, seed=0) == (train, val)
    assert split_cases(cases, 0.2, seed=1)[1] != val
    two_train, two_val = split_cases(cases[:2], 0.2, 0)
    assert len(two_train) == len(two_val) == 1  # both sides keep a case
    one = cases[:1]
    assert split_cases(one, 0.2, 0) == (one, one)


def test_epoch_sampler_orders_by_seed_and_epoch_and_shards():
    from medai_lab.datasets.msd import EpochSampler

    s = EpochSampler(10, seed=3)
    s.set_epoch(4)
    first = list(s)
    assert [e for e, _ in first] == [4] * 10
    assert sorted(i for _, i in first) == list(range(10))
    s2 = EpochSampler(10, seed=3)
    s2.set_epoch(4)
    assert list(s2) == first  # same (seed, epoch): same order, whatever ran before
    s2.set_epoch(5)
    assert list(s2) != first
    shards = [list(EpochSampler(7, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 4  # equal steps on every rank
    assert {i for _, i in shards[0] + shards[1]} == set(range(7))


def test_augmentation_is_a_function_of_seed_epoch_and_item(phantoms):
    import torch

    from medai_lab.datasets.msd import SegmentationDataModule

    cfg = compose("liver", "smoke", ["data.augment.flip_prob=0.5", "data.cache=memory"])
    dm = SegmentationDataModule(cfg, phantoms("liver", 3), progress=False)
    dm.setup("fit")
    ds = dm.train_ds
    a, b = ds[(1, 0)], ds[(1, 0)]
    _ = ds[(2, 1)]  # other draws in between change nothing
    c = ds[(1, 0)]
    d = ds[(2, 0)]
    assert len(a) == cfg["data"]["samples_per_volume"]
    assert a[0]["image"].shape == (1, 32, 32, 32)
    for x, y in zip(a, c, strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(a, d, strict=True))
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[0] == cfg["data"]["batch_size"] * cfg["data"]["samples_per_volume"]


def _train(data, **kw):
    from medai_lab.tasks import train

    return train("lung", "smoke", data=data, progress=False, **kw)


def test_wrong_data_path(tmp_path):
    with pytest.raises(DataPathError) as info:
        _train(tmp_path / "no-such-dir", out_dir=tmp_path / "runs")
    assert str(info.value) == f"data path does not exist: {tmp_path / 'no-such-dir'}"
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataPathError, match=r"no dataset in .*stuff: expected dataset\.json"):
        _train(tmp_path / "stuff", out_dir=tmp_path / "runs")
    assert not (tmp_path / "runs" / "lung" / "checkpoints").exists()


def test_empty_dataset(tmp_path):
    (tmp_path / "a" / "imagesTr").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "dataset.json").write_text(json.dumps({"training": []}))
    (tmp_path / "c.csv").write_text("image,label\n")
    for data in ("a", "b", "c.csv"):
        with pytest.raises(EmptyDatasetError, match="has no training cases"):
            _train(tmp_path / data, out_dir=tmp_path / "runs")


def test_label_shape_mismatch_names_the_case(phantoms, tmp_path):
    data = tmp_path / "bad"
    shutil.copytree(phantoms("lung", 2), data)
    path = data / "labelsTr" / "lung_001.nii.gz"
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, :30], img.affine), path)
    with pytest.raises(LabelShapeError) as info:
        _train(data, out_dir=tmp_path / "runs")
    msg = str(info.value)
    assert msg.startswith("case lung_001: label shape (48, 48, 30) differs from image shape")
    assert "\n" not in msg and isinstance(info.value, MedaiError)


def test_missing_label_file_and_bad_manifest(phantoms, tmp_path):
    data = tmp_path / "nolabel"
    shutil.copytree(phantoms("heart", 2), data)
    (data / "labelsTr" / "heart_000.nii.gz").unlink()
    with pytest.raises(DataPathError, match="case heart_000: label file not found"):
        check_cases(find_cases(data))
    (tmp_path / "m.csv").write_text("img,seg\na,b\n")
    with pytest.raises(DatasetError, match="needs columns image,label"):
        find_cases(tmp_path / "m.csv")


def test_bad_seed(phantoms, tmp_path):
    from medai_lab.tasks import ConfigError

    with pytest.raises(ConfigError, match="seed must be a whole number >= 0, got -1"):
        _train(phantoms("lung"), out_dir=tmp_path, overrides=["seed=-1"])

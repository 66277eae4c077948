"""4-D cases in training datasets: frames as channels, one frame by index or by axis value."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import trigger_axis, write_fourd_liver

from medai_lab.datasets.frames import (
    FrameChoiceError,
    case_frames,
    dataset_channels,
    parse_frames,
    record_frames,
    select_frames,
)
from medai_lab.datasets.msd import find_cases, preprocess_key
from medai_lab.io import convert_dicom_to_nifti

SHAPE, SPACING = (48, 48, 32), (3.0, 3.0, 5.0)  # the liver smoke grid: no resampling
# Per case: the trigger times of its three frames (case 2 starts later, so 70 ms is frame 1).
TIMES = [[0.0, 35.0, 70.0], [0.0, 40.0, 70.0], [35.0, 70.0, 105.0]]


def _axis(values: list[float]) -> dict:
    return trigger_axis(values)


@pytest.fixture(scope="module")
def fourd_msd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 4-D liver phantoms: frame t brightens the liver by its trigger time (HU)."""
    return write_fourd_liver(tmp_path_factory.mktemp("fourd") / "msd", TIMES, SHAPE, SPACING)


def _module(data: Path, frames: object = None):
    from medai_lab.datasets.msd import SegmentationDataModule
    from medai_lab.tasks import compose

    cfg = compose("liver", "smoke", ["data.cache=none"])
    dm = SegmentationDataModule(cfg, data, progress=False, frames=frames)
    dm.setup("fit")
    return cfg, dm


def test_frame_choices_parse_and_select():
    assert parse_frames(None) == parse_frames("all") == "all"
    assert parse_frames(2) == parse_frames("2") == [2]
    assert parse_frames("echo_time = 30") == ("echo_time", 30.0)
    axis = _axis([35.0, 70.0, 105.0])
    assert select_frames("all", 3, None) == [0, 1, 2]
    assert select_frames([2, 0], 3, None) == [2, 0]
    assert select_frames(-1, 3, None) == [2]
    assert select_frames("trigger_time=70", 3, axis) == [1]
    assert select_frames("phase=105", 3, axis) == [2]
    assert select_frames("all", 1, None) == [0]  # a 3-D case is one channel
    for bad in ("sometimes", True, [1.5], "echo=fast"):
        with pytest.raises(FrameChoiceError):
            parse_frames(bad)
    with pytest.raises(FrameChoiceError, match="out of range"):
        select_frames(3, 3, None, "c7")
    with pytest.raises(FrameChoiceError, match="c7: no frame"):
        select_frames("trigger_time=50", 3, axis, "c7")
    with pytest.raises(FrameChoiceError, match="not echo_time"):
        select_frames("echo_time=70", 3, axis)
    with pytest.raises(FrameChoiceError, match="needs 4th-axis values"):
        select_frames("trigger_time=70", 3, None)


def test_all_frames_become_channels_of_every_batch(fourd_msd):
    cfg, dm = _module(fourd_msd)
    assert dm.in_channels == 3 == dataset_channels(fourd_msd)
    assert dm.frames == "all"
    batch = next(iter(dm.train_dataloader()))
    n = cfg["data"]["batch_size"] * cfg["data"]["samples_per_volume"]
    assert tuple(batch["image"].shape) == (n, 3, *cfg["task"]["patch_size"])
    assert tuple(batch["label"].shape) == (n, 1, *cfg["task"]["patch_size"])


def test_one_frame_by_axis_value_picks_each_cases_own_index(fourd_msd):
    import torch

    _, every = _module(fourd_msd)
    cfg, one = _module(fourd_msd, "trigger_time=70")
    assert one.in_channels == 1 == dataset_channels(fourd_msd, "trigger_time=70")
    assert case_frames(find_cases(fourd_msd), "trigger_time=70") == [[2], [2], [1]]
    # Same preprocessing, so the chosen channel is the very frame of the all-frames item.
    for k, case in enumerate(every.val_cases):
        index = TIMES[int(case["case"][-3:])].index(70.0)
        assert torch.equal(one.val_ds[k]["image"][0], every.val_ds[k]["image"][index])
    batch = next(iter(one.train_dataloader()))
    assert batch["image"].shape[1] == 1
    assert preprocess_key(cfg, one.frames) != preprocess_key(cfg, every.frames)
    assert preprocess_key(cfg, "all") == preprocess_key(cfg)  # 3-D caches keep their folder


def test_choice_recorded_in_dataset_json_is_the_default(fourd_msd, tmp_path):
    data = tmp_path / "msd"
    data.mkdir()
    for sub in ("imagesTr", "labelsTr"):
        (data / sub).symlink_to(fourd_msd / sub)
    shutil.copy(fourd_msd / "dataset.json", data / "dataset.json")
    before = (data / "dataset.json").read_text()
    with pytest.raises(FrameChoiceError, match="liver_002"):
        record_frames(data, "phase=0")  # not in every case: nothing recorded
    assert (data / "dataset.json").read_text() == before
    recorded = record_frames(data, "trigger_time=70")
    info = json.loads((data / "dataset.json").read_text())
    assert info["frames"] == recorded and info["tensorImageSize"] == "4D"
    assert recorded["channels"] == 1 and recorded["values"] == [70.0]
    assert recorded["axis"] == {"name": "phase", "attribute": "trigger_time", "unit": "ms"}
    assert info["training"] == json.loads(before)["training"]
    _, dm = _module(data)
    assert dm.in_channels == 1 and dm.frames == "trigger_time=70"
    _, dm = _module(data, "all")  # an explicit choice wins over the recorded one
    assert dm.in_channels == 3


def test_cases_that_cannot_agree_fail_naming_the_case(fourd_msd):
    with pytest.raises(FrameChoiceError, match="liver_002: no frame"):
        _module(fourd_msd, "trigger_time=0")
    with pytest.raises(FrameChoiceError, match="out of range"):
        _module(fourd_msd, 5)


def test_dicom_4d_series_converted_then_loaded_by_named_phase(shared_data, tmp_path):
    """A 4-D DICOM series from real CT headers -> ``convert`` (NIfTI + sidecar) -> channels."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    from series4d_helpers import build_series

    base = sorted((shared_data / "ct_series_basel" / "dicom").iterdir())[0]
    times = ["0", "350", "700"]
    data = tmp_path / "msd"
    training = []
    for i in range(2):
        src = build_series(
            base, tmp_path / f"s{i}", [{"TriggerTime": t} for t in times],
            n_slices=6, crop=96, seed=f"frames{i}",
        )  # fmt: skip
        image = data / "imagesTr" / f"heart_{i:03d}.nii.gz"
        image.parent.mkdir(parents=True, exist_ok=True)
        vol = convert_dicom_to_nifti(src, image, labels=False)
        assert vol.axis4 and vol.axis4["values"] == [0.0, 350.0, 700.0]
        label = (vol.array[..., 0] > 0).astype(np.uint8)
        (data / "labelsTr").mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(label, vol.affine), data / "labelsTr" / image.name)
        training.append({"image": f"./imagesTr/{image.name}", "label": f"./labelsTr/{image.name}"})
    (data / "dataset.json").write_text(json.dumps({"training": training}))
    assert dataset_channels(data) == 3
    assert dataset_channels(data, "phase=350") == 1
    assert case_frames(find_cases(data), "trigger_time=700") == [[2], [2]]

"""The model contract's frame choice: written only for 4-D models, read back exactly."""

from __future__ import annotations

import pytest

from medai_lab.contract import ContractError, Intensity, ModelContract

BASE = ModelContract(
    task="liver",
    patch_size=(64, 64, 32),
    spacing=(1.5, 1.5, 2.5),
    intensity=Intensity("ct_window", -100.0, 250.0),
    labels=((1, "liver"),),
)


@pytest.mark.parametrize("frames", [(0, 2), (1,), "trigger_time=400"])
def test_frame_choices_round_trip(frames: tuple[int, ...] | str) -> None:
    contract = ModelContract(**{**BASE.__dict__, "frames": frames})
    again = ModelContract.from_json(contract.to_json())
    assert again == contract and again.frames == frames


def test_a_3d_models_sidecar_has_no_frames_and_reads_as_all() -> None:
    assert "frames" not in BASE.to_dict()
    assert ModelContract.from_dict(BASE.to_dict()).frames == "all"
    assert ModelContract.from_dict({**BASE.to_dict(), "frames": 3}).frames == (3,)


@pytest.mark.parametrize("bad", ["phase", [], [1.5], True, {"a": 1}])
def test_bad_frame_choices_are_one_line_errors(bad: object) -> None:
    with pytest.raises(ContractError, match="frames"):
        ModelContract.from_dict({**BASE.to_dict(), "frames": bad})

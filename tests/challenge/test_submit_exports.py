"""Models from ``medai-lab export`` are accepted as submissions, whatever else was exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from medai_lab.export import export_model

CONTRACT = {
    "task": "liver",
    "patch_size": [32, 32, 32],
    "in_channels": 1,
    "spacing": [3.0, 3.0, 5.0],
    "orientation": "RAS",
    "intensity": {"mode": "ct_window", "a_min": -150, "a_max": 250},
    "labels": {"0": "background", "1": "liver", "2": "tumour"},
}


def test_torchscript_and_onnx_exports_of_one_model_both_submit(
    make_challenge: Any, tmp_path: Path
) -> None:
    """The README's order: export TorchScript to liver.ts, then ONNX to liver.onnx, submit both."""
    pytest.importorskip("onnxruntime")
    from monai.networks.nets import UNet

    net = UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    ts = export_model(net, CONTRACT, tmp_path / "liver.ts", "torchscript").model
    onnx = export_model(net, CONTRACT, tmp_path / "liver.onnx", "onnx").model
    ch = make_challenge()
    assert ch.submit(ts, team="owls", phase="test")["format"] == "torchscript"
    assert ch.submit(onnx, team="larks", phase="test")["format"] == "onnx"

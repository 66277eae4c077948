"""TorchScript and ONNX exports equal the eager network and carry their contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medai_lab.export import ExportError, export_model, load_exported

CONTRACT = {
    "task": "liver",
    "patch_size": [32, 32, 32],
    "in_channels": 1,
    "spacing": [1.5, 1.5, 2.5],
    "orientation": "RAS",
    "intensity": {"kind": "ct_window", "a_min": -150, "a_max": 250},
    "labels": {"0": "background", "1": "liver", "2": "tumour"},
}


def _net():
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_eager_on_new_shapes(fmt: str, tmp_path: Path) -> None:
    net = _net()
    result = export_model(net, CONTRACT, tmp_path / "model.bin", fmt)
    run, meta = load_exported(result.model)
    assert meta["format"] == fmt and meta["labels"] == CONTRACT["labels"]
    assert meta["spacing"] == CONTRACT["spacing"] and meta["input"]["shape"] == [1, 1, 32, 32, 32]
    assert result.sidecar == tmp_path / "model.json"
    x = torch.randn(2, 1, 48, 40, 32)  # another batch size and patch than the export saw
    with torch.no_grad():
        assert torch.allclose(run(x), net.eval()(x), rtol=1e-3, atol=1e-4)


def test_unknown_format_and_untraceable_network(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(_net(), CONTRACT, tmp_path / "m.x", "tflite")

    class Sneaky(torch.nn.Module):
        def forward(self, x):  # output depends on a Python branch the trace freezes
            return x * 2 if float(x.mean()) > 0 else x * -3

    # the trace input and the check input have means of opposite sign (fixed seeds)
    with pytest.raises(ExportError, match="disagrees"):
        export_model(Sneaky(), CONTRACT, tmp_path / "s.pt", "torchscript")
    assert not (tmp_path / "s.pt").exists() and not (tmp_path / "s.json").exists()

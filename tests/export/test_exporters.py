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
    "intensity": {"mode": "ct_window", "a_min": -150, "a_max": 250},
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
    foreground = {k: v for k, v in CONTRACT["labels"].items() if k != "0"}
    assert meta["format"] == fmt and meta["labels"] == foreground  # background is implied
    assert meta["spacing"] == CONTRACT["spacing"] and meta["input"]["shape"] == [1, 1, 32, 32, 32]
    assert result.sidecar == tmp_path / "model.bin.json"
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
    assert sorted(tmp_path.iterdir()) == []  # neither a model nor a sidecar


def test_exports_of_one_model_to_two_formats_keep_their_own_sidecars(tmp_path: Path) -> None:
    """``--out liver.ts`` then ``--out liver.onnx``: neither contract replaces the other."""
    from medai_lab.export import find_sidecar
    from medai_lab.inference import Predictor

    net = _net()
    ts = export_model(net, CONTRACT, tmp_path / "liver.ts", "torchscript")
    onnx = export_model(net, CONTRACT, tmp_path / "liver.onnx", "onnx")
    assert ts.sidecar != onnx.sidecar and ts.sidecar.is_file() and onnx.sidecar.is_file()
    assert find_sidecar(ts.model) == ts.sidecar and find_sidecar(onnx.model) == onnx.sidecar
    assert load_exported(ts.model)[1]["format"] == "torchscript"
    assert load_exported(onnx.model)[1]["format"] == "onnx"
    assert Predictor.load(ts.model).meta["format"] == "torchscript"


def test_sidecars_of_older_exports_are_used_only_when_they_match(tmp_path: Path) -> None:
    """An older export's ``<stem>.json`` still works for its own model, never for another."""
    from medai_lab.export import find_sidecar
    from medai_lab.inference import InferenceError, Predictor

    net = _net()
    old = export_model(net, CONTRACT, tmp_path / "liver.ts", "torchscript")
    legacy = old.sidecar.rename(tmp_path / "liver.json")  # where earlier versions wrote it
    assert find_sidecar(old.model) == legacy
    assert load_exported(old.model)[1]["format"] == "torchscript"
    onnx = export_model(net, CONTRACT, tmp_path / "liver.onnx", "onnx")
    onnx.sidecar.unlink()  # liver.onnx now has only the TorchScript model's liver.json beside it
    with pytest.raises(ExportError, match=r"liver\.json describes a torchscript model"):
        find_sidecar(onnx.model)
    with pytest.raises(InferenceError, match=r"liver\.json describes a torchscript model"):
        Predictor.load(onnx.model)
    legacy.unlink()
    with pytest.raises(ExportError, match=r"no preprocessing sidecar liver\.onnx\.json"):
        load_exported(onnx.model)

"""Export a segmentation network to TorchScript or ONNX with its preprocessing contract.

The exported file is useless without knowing what goes in: spacing, orientation, intensity
transform, patch size and label names travel in a JSON sidecar next to it, named after the
whole file (``liver.onnx`` -> ``liver.onnx.json``), so exports of one model to several formats
never replace each other's. Every reader finds it through :func:`find_sidecar`, which also
accepts the ``<stem>.json`` of earlier versions when it describes that model. Every export is
checked against the eager network on a random patch before the function returns; a mismatch is
an error, not a warning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medai_lab import __version__, atomic
from medai_lab.contract import ModelContract
from medai_lab.errors import MedaiError

FORMATS = ("torchscript", "onnx")
_TOL = {"rtol": 1e-3, "atol": 1e-4}


class ExportError(MedaiError):
    """The network could not be exported, or the export disagrees with it."""


@dataclass(frozen=True)
class ExportResult:
    """What was written and how far the export's output is from the eager network's."""

    model: Path
    sidecar: Path
    max_abs_diff: float


# file suffix -> format, to tell whether an older ``<stem>.json`` belongs to a model file
SUFFIX_FORMATS = {".ts": "torchscript", ".pt": "torchscript", ".onnx": "onnx"}


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """Where the sidecar of ``model_path`` is written: ``<file name>.json``."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def find_sidecar(model_path: str | os.PathLike[str]) -> Path:
    """The sidecar that describes ``model_path``; :class:`ExportError` with the fix when none.

    ``<file name>.json`` first; else the ``<stem>.json`` that earlier versions wrote if it describes
    this file (its ``file`` entry) or a model of this file's format. A ``<stem>.json`` written
    for another export of the same stem is refused, never used.
    """
    model = Path(model_path)
    side = sidecar_path(model)
    if side.is_file():
        return side
    legacy = model.with_suffix(".json")
    if not legacy.is_file() or legacy == model:
        raise ExportError(
            f"{model.name} has no preprocessing sidecar {side.name} next to it: export the "
            "model with medai-lab export, which writes both"
        )
    try:
        meta = json.loads(legacy.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{legacy.name} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise ExportError(f"{legacy.name} must hold a JSON object")
    fmt = meta.get("format")
    if meta.get("file") == model.name or fmt in (None, SUFFIX_FORMATS.get(model.suffix)):
        return legacy
    raise ExportError(
        f"{legacy.name} describes a {fmt} model ({meta.get('file', 'another file')}), not "
        f"{model.name}, and {side.name} is missing: export {model.name} again"
    )


def as_contract(contract: ModelContract | Mapping[str, Any]) -> ModelContract:
    """A :class:`ModelContract` from itself or its JSON form; :class:`ExportError` if invalid."""
    try:
        return ModelContract.from_dict(contract)
    except MedaiError as exc:
        raise ExportError(str(exc)) from None


def _example(contract: ModelContract, seed: int = 0) -> Any:
    import torch

    shape = [1, contract.in_channels, *contract.patch_size]
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def export_model(
    network: Any,
    contract: ModelContract | Mapping[str, Any],
    out: str | os.PathLike[str],
    fmt: str = "torchscript",
) -> ExportResult:
    """Export ``network`` (a ``torch.nn.Module``) and write its sidecar next to ``out``.

    Parameters
    ----------
    contract
        The model's :class:`~medai_lab.contract.ModelContract` (or its JSON form), written
        into the sidecar; an invalid one is an :class:`ExportError`.
    fmt
        ``torchscript`` (traced) or ``onnx`` (verified with onnxruntime).
    """
    import torch

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    contract = as_contract(contract)
    out = Path(out)
    network = network.eval().cpu()
    example, check = _example(contract, 0), _example(contract, 1)
    with torch.no_grad():
        expected = network(check)  # an input the tracer never saw
    with atomic.atomic_path(out) as tmp:
        try:
            (_torchscript if fmt == "torchscript" else _onnx)(network, example, tmp)
            run, _ = _load(tmp, fmt)
            with torch.no_grad():
                got = run(check)
        except Exception as exc:  # tracer and exporter errors come in many types
            raise ExportError(f"{fmt} export failed: {type(exc).__name__}: {exc}") from exc
        diff = float((torch.as_tensor(got) - expected).abs().max())
        if not torch.allclose(torch.as_tensor(got), expected, rtol=_TOL["rtol"], atol=_TOL["atol"]):
            raise ExportError(f"{fmt} export disagrees with the network (max |diff| {diff:.2e})")
    meta = {
        "format": fmt,
        "file": out.name,
        "input": {"shape": list(example.shape), "dtype": "float32", "layout": "NCDHW"},
        "output": {"shape": list(expected.shape), "meaning": "logits per label"},
        "verified_max_abs_diff": diff,
        "medai_lab_version": __version__,
        "torch_version": torch.__version__,
        **contract.to_dict(),
    }
    side = atomic.write_text(sidecar_path(out), json.dumps(meta, indent=2, default=str) + "\n")
    return ExportResult(out, side, diff)


def _torchscript(network: Any, example: Any, path: Path) -> None:
    import torch

    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(network, example, check_trace=False))
    traced.save(str(path))


def _onnx(network: Any, example: Any, path: Path) -> None:
    import torch

    dims = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    torch.onnx.export(
        network,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": dims, "logits": dims},
        opset_version=17,
        dynamo=False,
    )


def load_exported(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """A callable ``(N, C, D, H, W) float32 tensor -> logits`` and its sidecar contract."""
    path = Path(path)
    side = find_sidecar(path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        fmt = meta["format"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        kind = type(exc).__name__
        raise ExportError(f"{side.name} is not a MedAI Lab sidecar ({kind})") from None
    return _load(path, fmt)[0], meta


def _load(path: Path, fmt: str) -> tuple[Any, str]:
    import torch

    if fmt == "torchscript":
        return torch.jit.load(str(path)), fmt
    import onnxruntime as ort

    from medai_lab.cpushare import onnx_session_options

    session = ort.InferenceSession(
        str(path), onnx_session_options(), providers=["CPUExecutionProvider"]
    )

    def run(x: Any) -> Any:
        (y,) = session.run(None, {"image": x.detach().cpu().numpy().astype("float32")})
        return torch.from_numpy(y)

    return run, fmt

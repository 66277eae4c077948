"""Export trained networks (TorchScript, ONNX, MONAI bundle) with their preprocessing contract."""

from medai_lab.export.exporters import (
    FORMATS,
    ExportError,
    ExportResult,
    export_model,
    find_sidecar,
    load_exported,
    sidecar_path,
)
from medai_lab.export.source import ALL_FORMATS, export_checkpoint, load_network, resolve_checkpoint

__all__ = [
    "ALL_FORMATS",
    "FORMATS",
    "ExportError",
    "ExportResult",
    "export_checkpoint",
    "export_model",
    "find_sidecar",
    "load_exported",
    "load_network",
    "resolve_checkpoint",
    "sidecar_path",
]

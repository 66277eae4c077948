"""Export trained networks (TorchScript, ONNX) with their preprocessing contract."""

from medai_lab.export.exporters import (
    FORMATS,
    ExportError,
    ExportResult,
    export_model,
    load_exported,
    sidecar_path,
)

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "export_model",
    "load_exported",
    "sidecar_path",
]

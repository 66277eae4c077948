"""Vendor-specific facts read on demand: private 4-D fields and Philips MR scaling.

Both need a full header parse, which the fast header reader skips, so they are read only for
the series that need them (shared positions without standard attributes; Philips MR).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab.errors import DicomError
from medai_lab.io.dims import vendor_dims

PHILIPS_MODES = ("float", "display")
_PHILIPS_CREATOR = "Philips MR Imaging DD 001"


@lru_cache(maxsize=64)
def _dataset(path: Path, mtime: float) -> Any:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def _read(path: Path) -> Any:
    return _dataset(path, path.stat().st_mtime)


def _per_frame_items(ds: Any, n: int) -> list[Any]:
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    return list(per_frame) if per_frame is not None and len(per_frame) == n else [ds] * n


def add_vendor_dims(headers: list[Any]) -> bool:
    """Add vendor private 4-D fields (b-values, gradients, phase numbers) to frames' ``dims``.

    Standard attributes already found are kept. Returns whether any field was added.
    """
    added = False
    for h in headers:
        try:
            ds = _read(h.path)
        except Exception:  # unreadable now: the pixel read will say so with the reason
            continue
        top = vendor_dims(ds)
        for frame, item in zip(h.frames, _per_frame_items(ds, h.n_frames), strict=True):
            extra = top | (vendor_dims(item) if item is not ds else {})
            for key, value in extra.items():
                if key not in frame.dims:
                    frame.dims[key] = value
                    added = True
    return added


def _philips_scale_slope(item: Any, depth: int = 0) -> float | None:
    """Philips private scale slope (2005,xx0E), here or in a nested private item."""
    try:
        value = item.private_block(0x2005, _PHILIPS_CREATOR)[0x0E].value
        return float(value[0] if isinstance(value, (list, tuple)) else value)
    except (KeyError, ValueError, TypeError, IndexError):
        pass
    if depth > 1:
        return None
    for elem in item:
        if elem.VR == "SQ" and elem.tag.group == 0x2005 and elem.value:
            found = _philips_scale_slope(elem.value[0], depth + 1)
            if found is not None:
                return found
    return None


def vendor_scaling(
    info: Any, frames: list[Any], slopes: np.ndarray, inters: np.ndarray, *, philips: str
) -> dict[str, Any] | None:
    """Apply vendor scaling to the per-frame ``slopes``/``inters`` in place; what was done.

    Philips MR keeps a private scale slope (SS) beside RescaleSlope (RS) / Intercept (RI):
    ``"float"`` turns stored values into ``(SV * RS + RI) / (RS * SS)``, the scanner's own
    floating-point values (dcm2niix's default); ``"display"`` keeps ``SV * RS + RI``.
    """
    if philips not in PHILIPS_MODES:
        raise DicomError(f"philips scaling must be one of {', '.join(PHILIPS_MODES)}: {philips}")
    first = info.headers[0]
    if "PHILIPS" not in first.manufacturer.upper() or first.modality != "MR":
        return None
    scale = np.full(len(frames), np.nan)
    items: dict[Path, list[Any]] = {}
    for k, ref in enumerate(frames):
        if ref.header is None:
            continue
        path = ref.header.path
        if path not in items:
            ds = _read(path)
            items[path] = _per_frame_items(ds, ref.header.n_frames)
        found = _philips_scale_slope(items[path][ref.index])
        if found is None and items[path][ref.index] is not _read(path):
            found = _philips_scale_slope(_read(path))
        scale[k] = found if found else np.nan
    present = np.isfinite(scale)
    facts: dict[str, Any] = {"vendor": "Philips", "philips_scaling": philips}
    if not present.any():
        facts["philips_scale_slope"] = None
        return facts
    facts["philips_scale_slope"] = _one_or_list(scale[present])
    facts["rescale_slope"] = _one_or_list(slopes[present])
    facts["rescale_intercept"] = _one_or_list(inters[present])
    if philips == "float":
        rs = slopes[present]
        inters[present] = inters[present] / (rs * scale[present])
        slopes[present] = 1.0 / scale[present]
    return facts


def _one_or_list(values: np.ndarray) -> float | list[float]:
    uniq = np.unique(values)
    return float(uniq[0]) if len(uniq) == 1 else [float(v) for v in values]


def acquisition_facts(frames: list[Any]) -> dict[str, Any]:
    """Acquisition parameters shared by the series (for a BIDS sidecar), in DICOM units."""
    first = next((r.geometry.dims for r in frames if r.geometry is not None), {})
    out: dict[str, Any] = {}
    for key in ("repetition_time", "echo_time", "flip_angle", "field_strength"):
        values = {r.geometry.dims.get(key) for r in frames if r.geometry is not None}
        if len(values) == 1 and first.get(key) is not None:
            out[key] = first[key]
    return out

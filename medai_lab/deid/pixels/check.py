"""``check_pixels``: one Part 10 file in, a :class:`PixelOutcome` out.

Reasons are fixed phrases: nothing read from the pixels (or the header) ever goes into an
outcome, a log line or an exception message.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from medai_lab.deid.pixels import detect, encode, frames, layouts, ocr, redact
from medai_lab.errors import MedaiError

POLICIES = ("redact", "quarantine", "off")
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# objects whose pixel values are labels or computed grids, not a picture: no burned-in text,
# and a false positive would silently corrupt a mask or a dose
_NOT_PICTURES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation object, not an image",
    "1.2.840.10008.5.1.4.1.1.66.7": "segmentation object, not an image",
    "1.2.840.10008.5.1.4.1.1.481.2": "dose grid, not an image",
}


class PixelEngineMissing(MedaiError):
    """No usable OCR engine on this machine; the message says how to install one."""


@dataclass(frozen=True)
class PixelOutcome:
    """What the pixel check did to one file."""

    action: str  # "clean", "redacted", "quarantine" or "skipped"
    boxes: int  # regions filled (detected text boxes plus fixed layout regions)
    frames_checked: int
    reason: str  # fixed category phrase; empty for clean and redacted
    data: bytes | None  # new Part 10 bytes when the file changed, else None
    engine: str  # OCR engine name and versions, for the audit
    transfer_syntax: str = ""  # syntax of ``data`` (differs from the input's on a fallback)
    layouts: tuple[str, ...] = ()  # names of the vendor layouts applied
    detector_runs: int = 0  # frames (or projections) that went through the detector
    regions: tuple[tuple[int, int, int, int], ...] = ()  # filled boxes: x0, y0, x1, y1 (excl.)


def engine_available(engine: str = ocr.DEFAULT) -> str | None:
    """``None`` when the OCR engine is usable, else a one-line reason with the fix."""
    return ocr.unavailable(engine)


def _quarantine(
    reason: str, engine: str, checked: int = 0, boxes: list | None = None, **extra
) -> PixelOutcome:
    regions = tuple(boxes or ())
    return PixelOutcome(
        "quarantine",
        len(regions),
        checked,
        f"pixels: {reason}",
        None,
        engine,
        **extra,
        regions=regions,
    )


def check_pixels(
    part10: bytes,
    policy: str = "redact",
    *,
    engine: str | None = None,
    use_prefilter: bool = True,
) -> PixelOutcome:
    """Find burned-in text in every frame of one (header de-identified) Part 10 file.

    ``policy``: ``"redact"`` fills text regions and re-encodes losslessly, quarantining what
    cannot be redacted safely; ``"quarantine"`` quarantines any file with text; ``"off"``
    skips. Raises :class:`PixelEngineMissing` when the OCR engine is not installed.
    """
    if policy not in POLICIES:
        raise MedaiError(f"pixel policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    engine = engine or ocr.DEFAULT
    name = ocr.describe(engine)
    if policy == "off":
        return PixelOutcome("skipped", 0, 0, "pixels: check turned off", None, name)
    missing = ocr.unavailable(engine)
    if missing:
        raise PixelEngineMissing(missing)
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(part10))
        syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    except Exception:  # pydicom raises many types; the reason must stay generic
        return _quarantine("file cannot be read", name)
    label = _NOT_PICTURES.get(str(ds.get("SOPClassUID", "")))
    if label:
        return PixelOutcome("skipped", 0, 0, f"pixels: {label}", None, name)
    if "PixelData" not in ds:
        other = any(t in ds for t in _PIXEL_TAGS[1:])
        why = "float pixel data is not checked" if other else "no pixel data"
        return PixelOutcome("skipped", 0, 0, f"pixels: {why}", None, name)
    if not syntax:
        return _quarantine("file has no transfer syntax", name)
    try:
        px = frames.decode(part10, ds)
    except Exception:
        return _quarantine("pixel data cannot be decoded", name)
    try:
        found = detect.find_boxes(px, engine=engine, use_prefilter=use_prefilter)
    except Exception:
        return _quarantine("OCR failed", name, px.frames)
    fixed, names = layouts.layout_boxes(ds)
    boxes = found.boxes + [b for b in fixed if b not in found.boxes]
    extra: dict[str, Any] = {"layouts": tuple(names), "detector_runs": found.detector_runs}
    checked = found.frames_checked
    if not boxes:
        data = encode.to_bytes(ds) if encode.mark_clean(ds) else None
        return PixelOutcome("clean", 0, checked, "", data, name, syntax, **extra)
    if policy == "quarantine":
        return _quarantine("text found in pixel data", name, checked, boxes, **extra)
    if not encode.is_lossless(syntax):
        return _quarantine(
            "lossy transfer syntax cannot be re-encoded losslessly", name, checked, boxes, **extra
        )
    target, filled = redact.fill(px, boxes)
    extra["regions"] = tuple(filled)
    try:
        written = encode.write_pixels(ds, target, px.photometric)
        encode.mark_clean(ds)
        data = encode.to_bytes(ds)
        again = frames.decode(data, pydicom.dcmread(io.BytesIO(data)))
        same = again.stored.shape == target.shape and np.array_equal(again.stored, target)
    except Exception:
        return _quarantine("redacted pixels cannot be re-encoded", name, checked, boxes)
    if not same:
        return _quarantine("re-encoding the redacted pixels was not lossless", name, checked, boxes)
    return PixelOutcome("redacted", len(boxes), checked, "", data, name, written, **extra)

"""Burned-in text in pixel data: find it with an offline text detector, fill it, re-encode.

``check_pixels(part10_bytes, policy)`` returns a :class:`PixelOutcome`; the de-identification
pipeline calls it on every image after the header is de-identified. ``engine_available()``
says whether the OCR engine is installed. OCR engines are imported on first use only.
"""

from medai_lab.deid.pixels.check import (
    POLICIES,
    PixelEngineMissing,
    PixelOutcome,
    check_pixels,
    engine_available,
)

__all__ = ["POLICIES", "PixelEngineMissing", "PixelOutcome", "check_pixels", "engine_available"]

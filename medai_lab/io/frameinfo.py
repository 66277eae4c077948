"""The per-frame facts every header reader fills in, and small value parsers they share.

Kept apart from :mod:`medai_lab.io.headers` (which calls :mod:`medai_lab.io.multiframe`) so
that both depend on this module and neither on the other: no import loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FrameGeometry:
    """Where one 2-D frame lies, its rescale, and what tells it apart in a 4-D series.

    ``dims`` holds the per-frame attributes that may vary across volumes sharing slice
    positions (keys of :data:`medai_lab.io.fourd.KEYS`: ``echo_time``, ``trigger_time``,
    ``b_value``, ``gradient``, ...); absent attributes are simply not there.
    """

    ipp: np.ndarray  # ImagePositionPatient (LPS mm)
    iop: np.ndarray  # ImageOrientationPatient, 6 cosines
    spacing: tuple[float, float]  # (row spacing, column spacing) as in PixelSpacing
    slope: float = 1.0
    intercept: float = 0.0
    dims: dict[str, Any] = field(default_factory=dict)


class NotAnImage(Exception):
    """A file that cannot join a volume, with a short reason.

    ``corrupt`` marks files that look like DICOM but are damaged: a series folder holding one
    is probably incomplete, so loaders refuse it instead of quietly skipping a slice.
    """

    def __init__(self, reason: str, *, corrupt: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.corrupt = corrupt

    def __reduce__(self) -> tuple[object, ...]:
        # Crosses process boundaries (parallel folder scans) with ``corrupt`` intact.
        return _not_an_image, (self.reason, self.corrupt)


def _not_an_image(reason: str, corrupt: bool) -> NotAnImage:
    return NotAnImage(reason, corrupt=corrupt)


def floats(value: object, n: int) -> np.ndarray | None:
    """``n`` finite floats from a multi-valued attribute, or ``None``."""
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def opt_float(value: object) -> float | None:
    """A float from a DS/IS/FD value (first of several), or ``None``."""
    if isinstance(value, (list, tuple, np.ndarray)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None  # type: ignore[index, arg-type]
    try:
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None

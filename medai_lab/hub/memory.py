"""Kernel side of time-sliced GPU shares: cap PyTorch's memory at ``MEDAI_GPU_MEMORY_FRACTION``.

Call :func:`install` once at kernel or training start (the ``medai_lab`` IPython extension,
``medai-lab train``). It never imports torch itself: if torch is already imported the cap is
applied now, otherwise when torch is first imported (a post-import hook), and inside torch it
is queued until CUDA initialises, so a CPU-only notebook pays nothing.

The cap is cooperative: it bounds PyTorch's caching allocator in this process
(``torch.cuda.set_per_process_memory_fraction``), not other libraries or processes. MIG
instances are isolated by the hardware and need no cap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

ENV_FRACTION = "MEDAI_GPU_MEMORY_FRACTION"
_applied: dict[str, float] = {}


def memory_fraction(env: Mapping[str, str] | None = None) -> float | None:
    """The cap from the environment: a float in (0, 1), or None when there is none."""
    raw = (env if env is not None else os.environ).get(ENV_FRACTION, "").strip()
    try:
        frac = float(raw)
    except ValueError:
        return None
    return frac if 0.0 < frac < 1.0 else None


def apply_memory_cap(torch: Any, fraction: float) -> None:
    """Cap every visible CUDA device at ``fraction`` (queued until CUDA initialises)."""

    def _apply() -> None:
        for index in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(fraction, index)
        _applied["fraction"] = fraction

    lazy_call = getattr(torch.cuda, "_lazy_call", None)
    if torch.cuda.is_initialized() or lazy_call is None:
        if torch.cuda.is_available():
            _apply()
    else:
        lazy_call(_apply)


def install(env: Mapping[str, str] | None = None) -> float | None:
    """Apply the cap now (torch imported) or when torch is imported. Idempotent.

    Returns
    -------
    float or None
        The fraction that is (or will be) applied; None when the environment sets none.
    """
    fraction = memory_fraction(env)
    if fraction is None:
        return None
    if "torch" in sys.modules:
        if _applied.get("fraction") != fraction:
            apply_memory_cap(sys.modules["torch"], fraction)
    else:
        from medai_lab.cpushare import after_import

        after_import("torch", "gpu-memory-cap", lambda m: apply_memory_cap(m, fraction))
    return fraction

"""Modality LUT (rescale slope and intercept) over a stack of frames, in the narrowest dtype."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from medai_lab.io.geometry import FrameRef
from medai_lab.io.pixels import read_frames


def read_values(
    refs: list[FrameRef],
    rows: int,
    cols: int,
    slopes: np.ndarray,
    intercepts: np.ndarray,
    *,
    workers: int = 1,
) -> np.ndarray:
    """``stored * slope + intercept`` of ``refs`` as (n, rows, cols), as :func:`apply_rescale`.

    The common case (slope 1, an integer intercept, results within the stored dtype, as
    CT in HU) is finished while each frame is read; anything else takes the general path.
    """
    slopes = np.asarray(slopes, dtype=np.float64)
    intercepts = np.asarray(intercepts, dtype=np.float64)
    integral = bool(np.all(slopes == 1) and np.all(intercepts == np.rint(intercepts)))
    shift = intercepts.astype(np.int64) if integral and np.any(intercepts) else None
    stack = read_frames(refs, rows, cols, workers=workers, shift=shift)
    if shift is not None and stack.shifted.all():
        return stack.values
    values = stack.values
    for k in np.flatnonzero(stack.shifted):  # some frames would not fit: undo, then widen
        values[k] -= np.asarray(shift[k], np.int64).astype(values.dtype)  # type: ignore[index]
    return apply_rescale(values, slopes, intercepts, workers=workers)


def apply_rescale(
    stored: np.ndarray,
    slopes: np.ndarray,
    intercepts: np.ndarray,
    *,
    workers: int = 1,
) -> np.ndarray:
    """Modality LUT: ``stored * slope + intercept`` per slice, in the narrowest exact dtype.

    Integer results stay integers (int16 when they fit, as CT in HU does); anything else
    becomes float32. Works in place on ``stored`` where the dtype allows. ``workers``:
    threads for the arithmetic (NumPy releases the GIL).
    """
    slopes = np.asarray(slopes, dtype=np.float64)
    intercepts = np.asarray(intercepts, dtype=np.float64)
    integral = np.all(slopes == 1) and np.all(intercepts == np.rint(intercepts))
    if not integral:
        out = np.empty(stored.shape, dtype=np.float32)
        s32, i32 = slopes.astype(np.float32), intercepts.astype(np.float32)

        def scale(part: slice) -> None:
            np.multiply(stored[part], s32[part, None, None], out=out[part], casting="unsafe")
            out[part] += i32[part, None, None]

        _in_parts(len(stored), workers, scale)
        return out
    if not np.any(intercepts):
        return stored
    lo = float(stored.min()) + float(intercepts.min())
    hi = float(stored.max()) + float(intercepts.max())
    target = next(
        (np.dtype(t) for t in (stored.dtype, np.int16, np.int32) if _fits(np.dtype(t), lo, hi)),
        np.dtype(np.float64),
    )
    out = stored if target == stored.dtype else np.empty(stored.shape, dtype=target)
    # Through int64: a negative intercept on an unsigned target wraps exactly (mod 2**bits).
    add = intercepts.astype(np.int64).astype(target) if target.kind in "iu" else intercepts

    def shift(part: slice) -> None:
        if np.all(add[part] == add[part][0]):
            np.add(stored[part], add[part][0], out=out[part], casting="unsafe")
        else:
            np.add(stored[part], add[part, None, None], out=out[part], casting="unsafe")

    _in_parts(len(stored), workers, shift)
    return out


def _in_parts(n: int, workers: int, fn: Callable[[slice], None]) -> None:
    """``fn`` on ``workers`` contiguous slices of range(n), in threads when there are several."""
    if workers <= 1 or n < 2 * workers:
        fn(slice(0, n))
        return
    step = -(-n // workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, [slice(i, min(n, i + step)) for i in range(0, n, step)]))


def _fits(dtype: np.dtype, lo: float, hi: float) -> bool:
    if not np.issubdtype(dtype, np.integer):
        return False
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max

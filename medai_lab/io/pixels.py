"""Read the pixel data of an ordered stack into one array, in parallel, and rescale it.

Uncompressed frames are read straight from the file into their place in the output buffer
(no intermediate copies); compressed ones go through pydicom's decoders (pylibjpeg plugins).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medai_lab.cpushare import cpu_count
from medai_lab.errors import DicomError
from medai_lab.io.geometry import FrameRef
from medai_lab.io.headers import RAW_SYNTAXES, ImageHeader


def stored_dtype(headers: list[ImageHeader]) -> np.dtype:
    kinds = {(h.bits_allocated, h.signed) for h in headers}
    if len(kinds) > 1:
        raise DicomError("slices differ in BitsAllocated/PixelRepresentation")
    bits, signed = kinds.pop()
    if bits not in (8, 16, 32):
        raise DicomError(f"unsupported BitsAllocated {bits}")
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


@dataclass
class FrameStack:
    """Frames read in order, and whether each was already shifted."""

    values: np.ndarray  # (n, rows, cols)
    shifted: np.ndarray  # True where ``shift`` was added in place


def read_frames(
    refs: list[FrameRef],
    rows: int,
    cols: int,
    *,
    workers: int | None = None,
    shift: np.ndarray | None = None,
) -> FrameStack:
    """Stored values of ``refs`` (n, rows, cols), masked to BitsStored.

    Blank refs are 0. ``shift`` (one integer per frame: the intercept) is added to each
    frame right after it is read, while it is still in the CPU cache, when the result fits
    the stored dtype: that saves the rescale two passes over memory (range, then add).
    """
    headers = [r.header for r in refs if r.header is not None]
    dtype = stored_dtype(headers)
    bits_stored = min(h.bits_stored for h in headers)
    out = np.zeros((len(refs), rows, cols), dtype=dtype)
    stack = FrameStack(out, np.zeros(len(refs), dtype=bool))
    shifted = stack.shifted
    info = np.iinfo(dtype)
    bits = min(bits_stored, info.bits)
    # What BitsStored allows: when that range, shifted, fits the dtype, no pass is needed.
    span = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if info.min < 0 else (0, (1 << bits) - 1)
    # Through int64: a negative shift on an unsigned dtype wraps exactly (mod 2**bits).
    wrapped = None if shift is None else np.asarray(shift, np.int64).astype(dtype)
    by_file: dict[Path, list[tuple[int, FrameRef]]] = {}
    for k, ref in enumerate(refs):
        if ref.header is not None:
            by_file.setdefault(ref.header.path, []).append((k, ref))

    def finish(k: int) -> None:
        frame = out[k]
        mask_bits(frame, bits_stored)
        if shift is None:
            return
        # Only the bound the shift moves towards the edge of the dtype needs a pass.
        if shift[k] < 0:
            fits = info.min <= span[0] + shift[k] or info.min <= int(frame.min()) + shift[k]
        else:
            fits = span[1] + shift[k] <= info.max or int(frame.max()) + shift[k] <= info.max
        if fits:
            np.add(frame, wrapped[k], out=frame)  # type: ignore[index]
            shifted[k] = True

    def load(items: list[tuple[Path, list[tuple[int, FrameRef]]]]) -> None:
        for _, placed in items:
            header = placed[0][1].header
            assert header is not None
            if header.raw_readable:
                _read_raw(header, placed, out)
            else:
                _decode(header, placed, out)
            for k, _ in placed:
                finish(k)

    items = list(by_file.items())
    # Uncompressed reads release the GIL (the kernel copies into ``out``); more threads than
    # cores only add contention (measured).
    workers = workers or min(4, cpu_count())
    coded = [it for it in items if not it[1][0][1].header.raw_readable]  # type: ignore[union-attr]
    if len(coded) >= _MIN_PARALLEL_DECODE and workers > 1:
        # Compressed frames: decoders hold the GIL, so they run in processes.
        _decode_in_processes(coded, out, workers)
        for _, placed in coded:
            for k, _ in placed:
                finish(k)
        items = [it for it in items if it[1][0][1].header.raw_readable]  # type: ignore[union-attr]
    if len(items) < 4 or workers == 1:
        load(items)
    else:
        # A few contiguous runs of files a thread: one task per file costs more than it saves.
        step = -(-len(items) // workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(load, [items[i : i + step] for i in range(0, len(items), step)]))
    for blank in (k for k, r in enumerate(refs) if r.header is None):
        finish(blank)  # blank slices: 0 stored, shifted like the others
    return stack


_MIN_PARALLEL_DECODE = 8  # files: below this, starting processes costs more than it saves


def _decode_in_processes(
    items: list[tuple[Path, list[tuple[int, FrameRef]]]], out: np.ndarray, workers: int
) -> None:
    """Decode compressed files in ``workers`` processes, placing frames into ``out``."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers start in milliseconds with pydicom already imported (no re-import).
    method = "fork" if "fork" in mp.get_all_start_methods() else None
    jobs = []
    for _, placed in items:
        header = placed[0][1].header
        assert header is not None
        jobs.append((header, [ref.index for _, ref in placed]))
    chunk = max(1, len(jobs) // (4 * workers))
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method)) as pool:
        for (path, placed), result in zip(
            items, pool.map(_decode_job, jobs, chunksize=chunk), strict=True
        ):
            if isinstance(result, str):
                raise DicomError(result)
            if result.shape[1:] != out.shape[1:]:
                raise DicomError(f"{path.name}: decoded size {result.shape[1:]} != Rows x Columns")
            for (k, _), frame in zip(placed, result, strict=True):
                out[k] = frame


def _decode_job(job: tuple[ImageHeader, list[int]]) -> np.ndarray | str:
    """Worker: the requested frames of one file, or a one-line reason it cannot be decoded."""
    header, indices = job
    arr = _decoded_or_reason(header)
    return arr if isinstance(arr, str) else np.ascontiguousarray(arr[indices])


def _read_raw(header: ImageHeader, placed: list[tuple[int, FrameRef]], out: np.ndarray) -> None:
    nbytes = header.frame_bytes
    assert header.pixel_offset is not None
    with open(header.path, "rb", buffering=0) as fh:
        for k, ref in placed:
            fh.seek(header.pixel_offset + ref.index * nbytes)
            got = fh.readinto(memoryview(out[k]).cast("B"))
            if got != nbytes:
                raise DicomError(
                    f"{header.path.name}: pixel data truncated ({got} of {nbytes} bytes)"
                )
    if RAW_SYNTAXES[header.transfer_syntax] == ">" and out.dtype.itemsize > 1:
        for k, _ in placed:
            out[k].byteswap(inplace=True)


def _decode(header: ImageHeader, placed: list[tuple[int, FrameRef]], out: np.ndarray) -> None:
    arr = _decoded_or_reason(header)
    if isinstance(arr, str):
        raise DicomError(arr)
    if arr.shape[1:] != out.shape[1:]:
        raise DicomError(f"{header.path.name}: decoded size {arr.shape[1:]} != Rows x Columns")
    for k, ref in placed:
        out[k] = arr[ref.index]


def _decoded_or_reason(header: ImageHeader) -> np.ndarray | str:
    """All frames of one compressed file, or a one-line reason they cannot be decoded."""
    from medai_lab.io.codecs import decode_frames

    try:
        return decode_frames(header)
    except Exception as exc:  # decoders raise many types; the reason is what matters
        from pydicom.uid import UID

        return (
            f"{header.path.name}: cannot decode pixel data "
            f"({UID(header.transfer_syntax).name}: {str(exc).splitlines()[0][:120]})"
        )


def mask_bits(out: np.ndarray, bits_stored: int) -> None:
    """Keep only ``bits_stored`` bits (high bits may hold overlays or noise), sign-extending."""
    total = out.dtype.itemsize * 8
    if bits_stored >= total or bits_stored <= 0:
        return
    if np.issubdtype(out.dtype, np.signedinteger):
        shift = total - bits_stored
        np.left_shift(out, shift, out=out)
        np.right_shift(out, shift, out=out)
    else:
        np.bitwise_and(out, np.array((1 << bits_stored) - 1, dtype=out.dtype), out=out)

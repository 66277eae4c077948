"""Read the pixel data of an ordered stack into one array, in parallel, then rescale.

Uncompressed frames are read straight from the file into their place in the output buffer
(no intermediate copies); compressed ones go through pydicom's decoders (pylibjpeg plugins).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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


def read_frames(
    refs: list[FrameRef], rows: int, cols: int, *, workers: int | None = None
) -> np.ndarray:
    """Stored values of ``refs`` as an array of shape (n, rows, cols); blank refs are 0."""
    headers = [r.header for r in refs if r.header is not None]
    dtype = stored_dtype(headers)
    out = np.zeros((len(refs), rows, cols), dtype=dtype)
    by_file: dict[Path, list[tuple[int, FrameRef]]] = {}
    for k, ref in enumerate(refs):
        if ref.header is not None:
            by_file.setdefault(ref.header.path, []).append((k, ref))

    def load(item: tuple[Path, list[tuple[int, FrameRef]]]) -> None:
        _, placed = item
        header = placed[0][1].header
        assert header is not None
        if header.raw_readable:
            _read_raw(header, placed, out)
        else:
            _decode(header, placed, out)

    items = list(by_file.items())
    # Header parsing holds the GIL; more threads than cores only add contention (measured).
    workers = workers or min(4, cpu_count())
    coded = [it for it in items if not it[1][0][1].header.raw_readable]  # type: ignore[union-attr]
    if len(coded) >= _MIN_PARALLEL_DECODE and workers > 1:
        # Compressed frames: decoders hold the GIL, so they run in processes.
        _decode_in_processes(coded, out, workers)
        items = [it for it in items if it[1][0][1].header.raw_readable]  # type: ignore[union-attr]
    if len(items) < 4 or workers == 1:
        for item in items:
            load(item)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(load, items))
    _mask_bits(out, headers)
    return out


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


def _mask_bits(out: np.ndarray, headers: list[ImageHeader]) -> None:
    """Keep only BitsStored bits (high bits may hold overlays or noise), sign-extending."""
    bits_stored = min(h.bits_stored for h in headers)
    total = out.dtype.itemsize * 8
    if bits_stored >= total or bits_stored <= 0:
        return
    if np.issubdtype(out.dtype, np.signedinteger):
        shift = total - bits_stored
        np.left_shift(out, shift, out=out)
        np.right_shift(out, shift, out=out)
    else:
        np.bitwise_and(out, np.array((1 << bits_stored) - 1, dtype=out.dtype), out=out)


def apply_rescale(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """Modality LUT: ``stored * slope + intercept`` per slice, in the narrowest exact dtype.

    Integer results stay integers (int16 when they fit, as CT in HU does); anything else
    becomes float32. Works in place on ``stored`` where the dtype allows.
    """
    slopes = np.asarray(slopes, dtype=np.float64)
    intercepts = np.asarray(intercepts, dtype=np.float64)
    integral = np.all(slopes == 1) and np.all(intercepts == np.rint(intercepts))
    if not integral:
        out = stored.astype(np.float32)
        if np.any(slopes != 1):
            out *= slopes.astype(np.float32)[:, None, None]
        if np.any(intercepts != 0):
            out += intercepts.astype(np.float32)[:, None, None]
        return out
    if not np.any(intercepts):
        return stored
    lo = float(stored.min()) + float(intercepts.min())
    hi = float(stored.max()) + float(intercepts.max())
    target = next(
        (np.dtype(t) for t in (stored.dtype, np.int16, np.int32) if _fits(np.dtype(t), lo, hi)),
        np.dtype(np.float64),
    )
    out = stored if target == stored.dtype else stored.astype(target)
    if np.all(intercepts == intercepts[0]):
        out += out.dtype.type(intercepts[0])
    else:
        out += intercepts.astype(out.dtype)[:, None, None]
    return out


def _fits(dtype: np.dtype, lo: float, hi: float) -> bool:
    if not np.issubdtype(dtype, np.integer):
        return False
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max

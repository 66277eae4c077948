"""Parallel gzip: independent gzip members compressed on all cores, concatenated.

RFC 1952 allows several members in one file and every gzip reader (zlib, nibabel, ITK,
dcm2niix, FSL) reads them as one stream. zlib releases the GIL, so threads scale.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medai_lab.cpushare import cpu_count

_MIN_CHUNK = 4 << 20


def _member(chunk: memoryview, level: int) -> bytes:
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip header + trailer
    return comp.compress(chunk) + comp.flush()


def write_gzip(
    data: bytes | memoryview,
    path: str | os.PathLike[str],
    *,
    compresslevel: int = 1,
    workers: int | None = None,
) -> None:
    """Compress ``data`` into the gzip file ``path`` using ``workers`` threads."""
    view = memoryview(data).cast("B")
    workers = workers or cpu_count()
    nchunks = max(1, min(4 * workers, len(view) // _MIN_CHUNK))
    size = -(-len(view) // nchunks)
    chunks = [view[i : i + size] for i in range(0, len(view), size)] or [view]
    with open(Path(path), "wb") as fh:
        if len(chunks) == 1:
            fh.write(_member(chunks[0], compresslevel))
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for member in pool.map(lambda c: _member(c, compresslevel), chunks):
                fh.write(member)

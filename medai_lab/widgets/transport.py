"""Volumes to the browser as compressed binary chunks (see PROTOCOL.md).

Chunks are whole k-slabs of the RAS+ array with i fastest, so no full-volume copy is made;
each is byte-shuffled (int16 CT compresses about twice as well) and deflated in a thread pool
(zlib releases the GIL), then sent in order as soon as it is ready.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHUNK_BYTES = 4 << 20  # well below Jupyter's 10 MiB websocket message limit, even uncompressed
PREVIEW_VOXELS = 4 << 20  # images larger than this get a coarse level first
DTYPES = {"int16", "uint8", "uint16", "float32"}
Send = Callable[[dict[str, Any], list[bytes]], None]


def browser_dtype(array: np.ndarray, *, labels: bool = False) -> np.dtype:
    """The dtype an array travels as: labels uint8/uint16, images int16 when exact, else float32."""
    if labels:
        top = int(array.max(initial=0))
        if array.size and int(array.min(initial=0)) < 0:
            raise ValueError("label maps must not hold negative values")
        return np.dtype(np.uint8 if top < 256 else np.uint16)
    if array.dtype.name in DTYPES:
        return array.dtype
    if array.dtype.kind in "iub" and array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo >= -32768 and hi <= 32767:
            return np.dtype(np.int16)
    return np.dtype(np.float32)


def preview_factor(shape: tuple[int, ...], budget: int = PREVIEW_VOXELS) -> tuple[int, int, int]:
    """Per-axis integer stride bringing ``shape`` under ``budget`` voxels (1s when it fits)."""
    n = math.prod(shape)
    if n <= budget:
        return (1, 1, 1)
    f = math.ceil((n / budget) ** (1 / 3))
    # Thin slabs (few slices) are strided in-plane only.
    fz = 1 if shape[2] < 32 else f
    fxy = math.ceil(math.sqrt(n / budget / fz)) if fz == 1 else f
    return (fxy, fxy, fz)


@dataclass
class Level:
    """One resolution level of one volume, ready to stream."""

    volume: str
    level: int
    array: np.ndarray  # x-y-z, already strided and cast
    factor: tuple[int, int, int]
    codec: str = "deflate"
    _cache: list[tuple[dict[str, Any], bytes]] = field(default_factory=list, repr=False)

    @property
    def slabs(self) -> list[tuple[int, int]]:
        nx, ny, nz = self.array.shape
        per = max(1, CHUNK_BYTES // max(1, nx * ny * self.array.itemsize))
        return [(k, min(nz, k + per)) for k in range(0, nz, per)]

    def header(self) -> dict[str, Any]:
        return {
            "type": "begin", "volume": self.volume, "level": self.level,
            "shape": list(self.array.shape), "factor": list(self.factor),
            "dtype": self.array.dtype.name, "nbytes": int(self.array.nbytes),
            "chunks": len(self.slabs), "codec": self.codec, "shuffle": self.array.itemsize > 1,
        }  # fmt: skip

    def chunks(self, pool: ThreadPoolExecutor) -> Iterator[tuple[dict[str, Any], bytes]]:
        """(message, payload) per chunk in order; cached after the first full pass."""
        if self._cache:
            yield from self._cache
            return
        slabs, done = self.slabs, []
        plane = self.array.shape[0] * self.array.shape[1] * self.array.itemsize
        for index, payload in enumerate(pool.map(self._encode, slabs)):
            k0, k1 = slabs[index]
            msg = {"type": "chunk", "volume": self.volume, "level": self.level,
                   "index": index, "offset": k0 * plane, "size": (k1 - k0) * plane}  # fmt: skip
            done.append((msg, payload))
            yield msg, payload
        self._cache = done

    def _encode(self, slab: tuple[int, int]) -> bytes:
        block = self.array[:, :, slab[0] : slab[1]]
        raw = np.asfortranarray(block).reshape(-1, order="F")  # i fastest
        if self.array.itemsize > 1:
            raw = raw.view(np.uint8).reshape(-1, self.array.itemsize).T  # byte planes
        data = np.ascontiguousarray(raw).tobytes()
        return zlib.compress(data, 1) if self.codec == "deflate" else data


def levels(name: str, array: np.ndarray, *, labels: bool = False) -> list[Level]:
    """The levels to send for one RAS+ array, coarsest first."""
    dtype = browser_dtype(array, labels=labels)
    full = array if array.dtype == dtype else array.astype(dtype)
    out = [Level(name, 0, full, (1, 1, 1))]
    f = preview_factor(full.shape)
    if f != (1, 1, 1):
        out.insert(0, Level(name, 1, full[:: f[0], :: f[1], :: f[2]], f))
    return out


def stream(levels_: list[Level], send: Send, workers: int = 4) -> int:
    """Send every level (begin, chunks, end); returns the compressed bytes sent."""
    sent = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="medai-viewer") as pool:
        for lvl in levels_:
            send(lvl.header(), [])
            for msg, payload in lvl.chunks(pool):
                send(msg, [payload])
                sent += len(payload)
            send({"type": "end", "volume": lvl.volume, "level": lvl.level}, [])
    return sent


def decode(header: dict[str, Any], chunks: list[tuple[dict[str, Any], bytes]]) -> np.ndarray:
    """Inverse of the stream for one level (what the browser does): the x-y-z array."""
    dtype = np.dtype(header["dtype"]).newbyteorder("<")
    out = np.empty(header["nbytes"], dtype=np.uint8)
    for msg, payload in chunks:
        data = zlib.decompress(payload) if header["codec"] == "deflate" else payload
        raw = np.frombuffer(data, dtype=np.uint8)
        if header["shuffle"]:
            raw = raw.reshape(dtype.itemsize, -1).T.reshape(-1)
        out[msg["offset"] : msg["offset"] + msg["size"]] = raw
    return out.view(dtype).reshape(header["shape"], order="F")

"""The ``volume`` response: the viewer protocol framed for HTTP (see ``docs/lab-api.md``).

Frame = ``uint32 LE json length | JSON | uint32 LE payload length | payload``. A loaded scene is
kept in a small LRU cache (keyed by real path, size and modification time), so re-opening a
volume neither reads nor compresses it again; the response itself is written frame by frame.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medai_lab.widgets.scene import Scene

CACHE_SIZE = 2
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".dcm")
_cache: OrderedDict[tuple[Any, ...], tuple[Scene, dict[str, Any]]] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[tuple[Any, ...], threading.Lock] = {}
_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The compression threads shared by all requests (zlib releases the GIL)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(4, thread_name_prefix="medai-volume")
    return _pool


def frame(message: dict[str, Any], payload: bytes = b"") -> bytes:
    """One frame: length-prefixed JSON, then length-prefixed payload."""
    head = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"".join((struct.pack("<I", len(head)), head, struct.pack("<I", len(payload)), payload))


def read_frames(body: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Inverse of :func:`frame` over a whole body (tests, benchmarks)."""
    pos = 0
    while pos < len(body):
        (n,) = struct.unpack_from("<I", body, pos)
        message = json.loads(body[pos + 4 : pos + 4 + n])
        pos += 4 + n
        (m,) = struct.unpack_from("<I", body, pos)
        yield message, body[pos + 4 : pos + 4 + m]
        pos += 4 + m


def is_volume(path: Path) -> bool:
    """A DICOM folder or a ``.nii``, ``.nii.gz``, ``.dcm`` file."""
    return path.is_dir() or path.name.lower().endswith(VOLUME_SUFFIXES)


def _key(path: Path) -> tuple[Any, ...]:
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns)


def initial_state(scene: Scene) -> dict[str, Any]:
    """The first frame: initial trait values, as the notebook widget would set them.

    The preset is the viewer's "auto" choice (:func:`medai_lab.widgets.autowindow.choose_window`);
    ``preset_auto`` says so, so that a user's own default preset may take its place.
    """
    from medai_lab.widgets.autowindow import choose_window

    preset, window = choose_window(scene)
    has_labels = scene.labels is not None
    return {
        "type": "state", "meta": scene.meta(), "window": [float(window[0]), float(window[1])],
        "preset": preset, "preset_auto": True, "cursor": scene.start_cursor(),
        "overlay_mode": "labels" if has_labels else "none",
    }  # fmt: skip


def load(image: Path, labels: Path | None = None) -> tuple[Scene, dict[str, Any]]:
    """(scene, state frame) of ``image`` with optional ``labels``; cached (blocking: run in a
    thread). Raises whatever loading raises (``MedaiError``, ``OSError``, ``ValueError``...)."""
    from medai_lab.widgets.api import scene_of

    key = (_key(image), _key(labels) if labels is not None else None)
    with _cache_lock:
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:  # two viewers opening the same CT load it once
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        scene = scene_of(str(image), str(labels) if labels is not None else None,
                         title=image.name)  # fmt: skip
        entry = (scene, initial_state(scene))
        with _cache_lock:
            _cache[key] = entry
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
            _load_locks.pop(key, None)
        return entry


def messages(scene: Scene) -> Iterator[tuple[dict[str, Any], bytes]]:
    """``begin`` / ``chunk`` / ``end`` for every level, in the widget's order (blocking)."""
    for level in scene.levels():
        yield level.header(), b""
        yield from level.chunks(pool())
        yield {"type": "end", "volume": level.volume, "level": level.level}, b""


def clear_cache() -> None:
    """Forget loaded scenes (tests)."""
    with _cache_lock:
        _cache.clear()

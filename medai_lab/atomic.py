"""Atomic file output: a path holds a complete file or nothing (temp name, then rename)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path


def partial_name(path: Path) -> Path:
    """A hidden temporary sibling of ``path``: same folder, so the rename is atomic."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(out)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary sibling folder; it becomes ``path`` only if the block succeeds.

    ``path`` must not exist or be an empty folder (callers check first, with their own error).
    """
    import shutil
    import tempfile

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked by the caller); a folder cannot be replaced everywhere
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes(path: str | os.PathLike[str], parts: Iterable[bytes | memoryview]) -> Path:
    """Write ``parts`` (any bytes-like pieces, in order) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.writelines(parts)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

"""Confine client-supplied paths to the server's root folder.

Every path the REST API receives is relative to ``ServerApp.root_dir``. It is refused when it is
absolute, starts with ``~``, holds ``..``, a NUL byte, a backslash or a drive letter, still
decodes to something like that after one more round of percent-decoding, names a hidden file
(unless the contents manager allows them), or resolves (symlinks followed) outside the root.
A folder is also refused when anything inside it links outside the root, because loading a DICOM
folder reads every file below it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

MAX_WALK = 100_000  # entries checked below a folder before giving up (refused)
_DRIVE = re.compile(r"^[A-Za-z]:")


class PathRefused(Exception):
    """A client path that may not be served: ``status`` 403 (refused) or 404 (missing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check_text(rel: str, allow_hidden: bool) -> list[str]:
    """The path's components after the textual checks (no file system access)."""
    if "\x00" in rel:
        raise PathRefused(403, "path refused: NUL byte")
    if "\\" in rel:
        raise PathRefused(403, "path refused: backslash")
    if rel.startswith(("/", "~")) or _DRIVE.match(rel):
        raise PathRefused(403, "path refused: must be relative to the server root")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise PathRefused(403, "path refused: '..' is not allowed")
        if part.startswith(".") and not allow_hidden:
            raise PathRefused(403, "path refused: hidden files are not served")
    return parts


def confine(
    root: str | os.PathLike[str],
    rel: str,
    *,
    must_exist: bool = True,
    allow_hidden: bool = False,
    check_tree: bool = True,
) -> Path:
    """The real path of ``rel`` inside ``root``, or :class:`PathRefused`.

    Parameters
    ----------
    root
        The server's root folder.
    rel
        Client path relative to ``root`` ("" is the root itself), already URL-decoded once.
    must_exist
        Raise 404 when the target does not exist.
    allow_hidden
        Serve names starting with a dot (``ContentsManager.allow_hidden``).
    check_tree
        For a folder, also refuse it when an entry below it resolves outside ``root``.

    Returns
    -------
    Path
        Absolute, symlink-free path below the real root.
    """
    if not isinstance(rel, str):
        raise PathRefused(403, "path refused: not a string")
    parts = _check_text(rel, allow_hidden)
    decoded = unquote(rel)
    if decoded != rel:  # double encoding: %252e%252e arrives here as %2e%2e
        _check_text(decoded, allow_hidden)
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root.joinpath(*parts)))
    if not _inside(target, real_root):
        raise PathRefused(403, "path refused: outside the server root")
    if must_exist and not target.exists():
        raise PathRefused(404, f"no such file or folder: {rel}")
    if check_tree and target.is_dir():
        _check_tree(target, real_root)
    return target


def relative(path: Path, root: str | os.PathLike[str]) -> str:
    """``path`` (below ``root``) as the API's POSIX path relative to the real root."""
    return path.relative_to(os.path.realpath(root)).as_posix()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _check_tree(folder: Path, root: Path) -> None:
    # Every entry, hidden ones too: the DICOM loader reads all files below the folder.
    seen = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            seen += 1
            if seen > MAX_WALK:
                raise PathRefused(403, f"folder refused: more than {MAX_WALK} entries")
            entry = Path(top, name)
            if entry.is_symlink() and not _inside(Path(os.path.realpath(entry)), root):
                raise PathRefused(403, "folder refused: it links outside the server root")

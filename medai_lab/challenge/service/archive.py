"""Submissions on the wire: one zip archive, packed by the client, unpacked by the service.

A model file travels with its JSON sidecar (``model.ts`` + ``model.ts.json``), a package or a
predictions folder as its contents. :func:`pack` returns the archive and the ``entry`` (the
name inside it that is the submission: a file name, or ``.`` for the archive's top).
:func:`unpack` refuses anything that could write outside its folder or fill the disk: absolute
names, ``..``, links, more than :data:`MAX_FILES` entries, more bytes than the cap (counted
while writing, not taken from the archive's headers).
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from medai_lab.challenge.errors import ChallengeError

MAX_FILES = 10_000
UPLOAD_SLACK = 1.1  # a zip of incompressible weights is a little larger than the files
_CHUNK = 1 << 20


def upload_cap(submission_mb: float) -> int:
    """Most bytes an upload may have for a spec's ``submission_mb`` (zip overhead allowed)."""
    return int(submission_mb * 2**20 * UPLOAD_SLACK) + 2**20


def pack(path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> tuple[Path, str]:
    """Zip the submission at ``path`` into ``out_dir``; ``(archive, entry)``.

    Written to a temporary name and renamed, so a half-written archive is never sent.
    """
    src = Path(path)
    if not src.exists():
        raise ChallengeError(f"submission not found: {src}")
    if src.is_file():
        files = {src.name: src}
        if src.suffix in (".ts", ".pt", ".onnx"):
            from medai_lab.export.exporters import ExportError, find_sidecar

            try:
                side = find_sidecar(src)
            except ExportError as exc:
                raise ChallengeError(str(exc)) from None
            files[f"{src.name}.json"] = side  # the name the service looks for
        entry = src.name
    else:
        files = {
            p.relative_to(src).as_posix(): p
            for p in sorted(src.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
        if not files:
            raise ChallengeError(f"{src} holds no files")
        entry = "."
    out = Path(out_dir) / "submission.zip"
    fd, tmp = tempfile.mkstemp(prefix=".submission-", suffix=".zip.partial", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, file in files.items():
                zf.write(file, name)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out, entry


def unpack(archive: Path, dest: Path, max_bytes: int) -> None:
    """Extract ``archive`` into the new folder ``dest``; :class:`ChallengeError` when refused."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise ChallengeError("the upload is not a zip archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise ChallengeError(f"the archive has {len(infos)} entries; at most {MAX_FILES}")
        dest.mkdir()
        total = 0
        for info in infos:
            rel = _safe_name(info)
            if rel is None:
                continue  # a folder entry
            target = dest.joinpath(*rel.parts)
            if target.exists():
                raise ChallengeError(f"the archive holds {info.filename!r} twice")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ChallengeError(
                            f"the submission unpacks to more than {max_bytes / 2**20:g} MiB"
                        )
                    out.write(chunk)


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath | None:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ChallengeError(f"the archive holds a link ({info.filename!r}); send files only")
    rel = PurePosixPath(name)
    parts = rel.parts
    if rel.is_absolute() or ".." in parts or (parts and ":" in parts[0]):  # C:/ on Windows
        raise ChallengeError(f"the archive holds an unsafe name: {info.filename!r}")
    if info.is_dir() or not rel.parts:
        return None
    return rel

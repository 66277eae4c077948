"""De-identify pydicom datasets or single files from Python and notebooks.

Both run the header step and then the pixel step under ``pixels`` (``redact`` by default,
as ``medai-lab deid``; see :func:`medai_lab.deid.deidentify_tree`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from medai_lab import atomic
from medai_lab.deid.engine import Deidentifier
from medai_lab.deid.keys import load_or_create_key
from medai_lab.errors import MedaiError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class Quarantined(MedaiError):
    """The input cannot be de-identified safely; the message is the reason."""


def _engine(
    options: Iterable[str],
    key: bytes | None,
    key_file: str | os.PathLike[str] | None,
    allow_burned_in: bool,
    pixels: str,
) -> Deidentifier:
    secret = key if key is not None else load_or_create_key(key_file)
    return Deidentifier(secret, options, allow_burned_in=allow_burned_in, pixels=pixels)


def deidentify_bytes(data: bytes, deid: Deidentifier) -> bytes:
    """One Part 10 file in, one de-identified Part 10 file out (or :class:`Quarantined`)."""
    outcome = deid.process(data)
    if outcome.parts is None:
        raise Quarantined(outcome.reason)
    return b"".join(bytes(p) for p in outcome.parts)


def deidentify_dataset(
    ds: Dataset,
    *,
    options: Iterable[str] = (),
    key: bytes | None = None,
    key_file: str | os.PathLike[str] | None = None,
    allow_burned_in: bool = False,
    pixels: str = "redact",
) -> Dataset:
    """A de-identified copy of ``ds`` (the input object is not modified)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    src = ds.copy()
    src.file_meta = FileMetaDataset(getattr(ds, "file_meta", FileMetaDataset()))
    if "TransferSyntaxUID" not in src.file_meta:
        src.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta = src.file_meta
    if "MediaStorageSOPClassUID" not in meta:
        meta.MediaStorageSOPClassUID = UID(str(src.get("SOPClassUID", "")))
    if "MediaStorageSOPInstanceUID" not in meta:
        meta.MediaStorageSOPInstanceUID = UID(str(src.get("SOPInstanceUID", "")))
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, src, enforce_file_format=True)
    deid = _engine(options, key, key_file, allow_burned_in, pixels)
    out = deidentify_bytes(buf.getvalue(), deid)
    return pydicom.dcmread(io.BytesIO(out))


def deidentify_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    options: Iterable[str] = (),
    key: bytes | None = None,
    key_file: str | os.PathLike[str] | None = None,
    allow_burned_in: bool = False,
    pixels: str = "redact",
) -> Path:
    """De-identify one file into ``dst`` (written atomically; ``src`` is never touched)."""
    deid = _engine(options, key, key_file, allow_burned_in, pixels)
    data = Path(src).read_bytes()
    out = deidentify_bytes(data, deid)
    return atomic.write_bytes(dst, [out])

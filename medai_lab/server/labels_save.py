"""``POST labels?path=IMAGE&shape=X,Y,Z&dtype=uint8|uint16``: save a viewer's edited labels.

The MedAI Viewer document (labext/src/viewer.ts) sends its label volume, zlib-compressed
(``CompressionStream("deflate")``), on the viewer's grid: the RAS+ grid of ``IMAGE`` as the
``volume`` endpoint streamed it, flat index ``i + nx*(j + ny*k)``. Written beside the image:

* ``<name>_labels.nii.gz`` (NIfTI, the image's RAS+ affine), always;
* ``<name>_seg.dcm`` (DICOM SEG referencing the series, via highdicom) when the image is DICOM.

``<name>`` is the image's file or folder name without ``.nii``/``.nii.gz``/``.dcm``. Each file is
written under a temporary hidden name in the same folder; only when both are written are they
renamed over their targets, so a reader never sees half a file and a failure (a SEG that cannot
reference the series) leaves the previous save intact and adds nothing. Answer:
``{"nifti": rel, "seg": rel | null, "voxels": n}``; a bad request is one line (400/422).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from jupyter_server.auth.decorator import authorized
from tornado import web

from medai_lab.errors import MedaiError
from medai_lab.server import paths, stream
from medai_lab.server.handlers import _Base

DTYPES = {"uint8": np.uint8, "uint16": np.uint16}
SUFFIXES = (".nii.gz", ".nii", ".dcm")


def targets(image: Path) -> tuple[Path, Path | None]:
    """(NIfTI path, SEG path or None) beside ``image``."""
    name = image.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    dicom = image.is_dir() or image.name.lower().endswith(".dcm")
    folder = image.parent
    return folder / f"{name}_labels.nii.gz", (folder / f"{name}_seg.dcm" if dicom else None)


def decode(body: bytes, shape: tuple[int, int, int], dtype: str) -> np.ndarray:
    """The x-y-z label array of a zlib body; MedaiError unless it is exactly that volume."""
    if dtype not in DTYPES:
        raise MedaiError(f"dtype {dtype!r}: uint8 or uint16")
    want = int(np.prod(shape)) * np.dtype(DTYPES[dtype]).itemsize
    z = zlib.decompressobj()
    try:
        raw = z.decompress(body, want + 1)  # bounded: a zip bomb stops one byte past the volume
    except zlib.error as exc:
        raise MedaiError(f"the body is not zlib data: {exc}") from None
    if len(raw) != want or not z.eof:
        raise MedaiError(f"the body holds {len(raw)} bytes, not {want} ({shape} {dtype})")
    return np.frombuffer(raw, DTYPES[dtype]).reshape(shape, order="F")


def _write_all(jobs: list[tuple[Path, Any]]) -> None:
    """Each ``write(tmp)`` to a hidden temporary name beside its target, then, only when all
    succeeded, each renamed over its target; on failure every temporary file is removed."""
    done: list[tuple[str, Path]] = []
    try:
        for target, write in jobs:
            suffix = ".nii.gz" if target.name.endswith(".nii.gz") else target.suffix
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".medai-save-", suffix=suffix)
            os.close(fd)
            done.append((tmp, target))
            write(Path(tmp))
        for tmp, target in done:
            os.replace(tmp, target)
    finally:
        for tmp, _target in done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def save(image: Path, labels: np.ndarray) -> tuple[Path, Path | None]:
    """Write ``labels`` (viewer grid of ``image``) beside it; returns the paths written."""
    from medai_lab.widgets.annotate import Annotations

    scene, _state = stream.load(image)
    if tuple(labels.shape) != tuple(scene.image.shape[:3]):
        raise MedaiError(f"labels {labels.shape} are not on the image grid {scene.image.shape[:3]}")
    mine = copy.copy(scene)  # the cached scene is shared by open viewers: never written
    mine.labels = np.array(labels, order="F")
    notes = Annotations(mine)
    notes.owned = True
    nifti, seg = targets(image)
    _write_all([(nifti, notes.save)] + ([(seg, notes.save)] if seg is not None else []))
    return nifti, seg


class LabelsSaveHandler(_Base):
    """POST: see the module docstring."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        rel = self.raw_argument("path") or ""
        if not rel:
            raise web.HTTPError(400, "missing query argument path")
        image = self.confine(rel)
        if not stream.is_volume(image):
            raise web.HTTPError(400, "path: not a .nii, .nii.gz, .dcm file or a DICOM folder")
        try:
            shape = tuple(int(v) for v in (self.raw_argument("shape") or "").split(","))
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError
        except ValueError:
            raise web.HTTPError(400, "shape: three positive integers X,Y,Z") from None
        dims = (shape[0], shape[1], shape[2])
        try:
            dtype = self.raw_argument("dtype") or "uint8"
            labels = await asyncio.to_thread(decode, self.request.body, dims, dtype)
            nifti, seg = await asyncio.to_thread(save, image, labels)
        except MedaiError as exc:
            raise web.HTTPError(422, str(exc).splitlines()[0]) from None
        except Exception as exc:  # loading/writing failures are the file's, said in one line
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise web.HTTPError(422, f"cannot save the labels: {line}") from None
        root = Path(self.root)
        self.reply({
            "nifti": paths.relative(nifti.resolve(), root),
            "seg": paths.relative(seg.resolve(), root) if seg is not None else None,
            "voxels": int(np.count_nonzero(labels)),
        })  # fmt: skip


def labels_save_handlers(api: str) -> list[tuple[str, Any]]:
    """The route, registered from :func:`medai_lab.server.handlers.handlers`."""
    from jupyter_server.utils import url_path_join

    return [(url_path_join(api, "labels"), LabelsSaveHandler)]

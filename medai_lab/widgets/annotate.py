"""The kernel side of annotation: the label array edits land in, saving it, measuring it.

Edits are made in the browser and arrive as ``edit`` messages (runs of voxels, see
:mod:`medai_lab.widgets.edits`); they are applied to the scene's label array, which is a copy
(the caller's array is never written). The array is on the viewer's RAS+ grid:
``viewer.scene.image`` (same voxels as the image, reoriented by axis permutation/flip only).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume
from medai_lab.widgets.edits import apply_edit

if TYPE_CHECKING:
    from medai_lab.widgets.scene import Scene

log = logging.getLogger(__name__)


class Annotations:
    """Label editing state of one scene: the editable array and what was received."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.owned = False  # scene.labels is our copy (edits may write it)
        self.edits = 0  # edit messages applied
        self.voxels = 0  # voxels written by them
        self.bytes = 0  # diff bytes received (runs buffers)
        self.last_seq = 0
        self.error = ""

    @property
    def labels(self) -> np.ndarray:
        """The editable label array (x-y-z, RAS+ grid of ``scene.image``); created on demand."""
        s = self.scene
        if not self.owned:
            src = s.labels if s.labels is not None else np.zeros(s.image.shape[:3], np.uint8)
            if src.size and int(src.min()) < 0:
                raise MedaiError("labels hold negative values: they cannot be edited")
            top = max([int(src.max(initial=0))] + [d["value"] for d in s.dictionary()])
            if top > 65535:
                raise MedaiError(f"label value {top} is above 65535: it cannot be edited")
            # A copy: the caller's array is never written.
            s.labels = np.array(src, dtype=np.uint8 if top < 256 else np.uint16, order="F")
            self.owned = True
        assert s.labels is not None
        return s.labels

    def receive(self, content: dict[str, Any], buffers: list[Any]) -> bool:
        """Apply an ``edit`` message; False (and ``error`` set, nothing written) when invalid."""
        buffer = buffers[0] if buffers else None
        try:
            written = apply_edit(self.labels, content, buffer)
        except MedaiError as exc:
            self.error = str(exc)
            log.warning("viewer: %s", exc)
            return False
        self.edits += 1
        self.voxels += written
        self.bytes += memoryview(buffer).nbytes if buffer is not None else 0
        self.last_seq = int(content.get("seq", self.last_seq + 1))
        self.scene.labels_changed()
        return True

    def paint(self, mask: Any, value: int) -> tuple[dict[str, Any], bytes]:
        """Set the voxels of ``mask`` (boolean, x-y-z on the RAS+ grid) to ``value``; returns
        the edit message for open views."""
        from medai_lab.widgets.edits import edit_message

        m = np.asarray(mask)
        if m.shape != tuple(self.scene.image.shape[:3]):
            raise MedaiError(f"mask shape {m.shape} is not the image grid {self.scene.image.shape}")
        if not 0 <= int(value) <= 65535:
            raise MedaiError(f"label value {value} is not between 0 and 65535")
        lab = self.labels
        if int(value) > np.iinfo(lab.dtype).max:
            self.scene.labels = lab = lab.astype(np.uint16, order="F")
        flat = np.flatnonzero(m.astype(bool).ravel(order="F"))
        lab[m.astype(bool)] = value
        self.voxels += flat.size
        self.scene.labels_changed()
        content, data = edit_message([(int(value), flat)], lab.shape, axis=0)
        content["origin"] = "kernel"
        return content, data

    def volume(self) -> Volume:
        """The labels as a :class:`Volume` with the image's geometry (RAS+ affine)."""
        lab = self.labels
        top = int(lab.max(initial=0))
        dtype = np.uint8 if top < 256 else np.uint16
        return Volume(lab.astype(dtype, copy=False), self.scene.image.affine.copy(), {})

    def save(self, path: str | os.PathLike[str], reference: Any = None) -> Path:
        """NIfTI (``.nii``/``.nii.gz``) with the image geometry, or DICOM SEG (``.dcm``)."""
        out = Path(path)
        name = out.name.lower()
        if name.endswith((".nii", ".nii.gz")):
            from medai_lab.io.nifti import save_nifti

            return save_nifti(self.volume(), out)
        if name.endswith(".dcm"):
            ref = reference if reference is not None else self.scene.source
            if ref is None:
                raise MedaiError("a DICOM SEG needs the image's DICOM series: "
                                 "save(path, reference=SERIES_DIR)")  # fmt: skip
            from medai_lab.io.seg import write_seg

            names = {d["value"]: d["name"] for d in self.scene.dictionary()}
            vol = self.volume()
            present = [int(v) for v in np.unique(vol.array) if v != 0]
            return write_seg(vol, ref, out, labels={v: names.get(v, f"label {v}") for v in present})
        raise MedaiError(f"save: {out.name} is neither .nii/.nii.gz (NIfTI) nor .dcm (DICOM SEG)")

    def stats(self) -> list[dict[str, Any]]:
        """ROI statistics per label (:func:`medai_lab.widgets.stats.label_stats`)."""
        from medai_lab.widgets.stats import label_stats

        s = self.scene
        lab = s.labels if s.labels is not None else np.zeros(s.image.shape[:3], np.uint8)
        names = {d["value"]: d["name"] for d in s.dictionary()}
        return label_stats(s.image.array, lab, s.image.spacing, names)

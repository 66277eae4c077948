"""Build 4-D DICOM series from a real slice: its header, pixel data and geometry, copied.

Each copy keeps every attribute of the real file (vendor, private groups, transfer syntax);
only what a 4-D acquisition changes is set: the slice position (stepped along the real slice
normal), the instance UIDs and numbers, and the attributes given per volume (EchoTime,
TriggerTime, DiffusionBValue, ...). Pixels are the real ones, shifted per slice and volume so
that no two frames are equal (a misplaced frame cannot pass a voxel comparison).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np


def _uid(seed: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[seed])


def build_series(
    base: str | Path,
    out: Path,
    volumes: list[dict[Any, Any]],
    *,
    n_slices: int = 4,
    seed: str = "test",
    shuffle: bool = True,
    crop: int | None = None,
    common: dict[Any, Any] | None = None,
    repeat: int = 1,
) -> Path:
    """Write ``len(volumes) * n_slices`` single-frame files under ``out``; returns ``out``.

    ``volumes[v]`` (and ``common``, for every file) maps a keyword, a ``(group, element, VR)``
    tag or a private ``(creator, group, offset, VR)`` to the value of volume ``v``. Files are
    written in a shuffled order so nothing relies on file names. Compressed sources are
    decompressed; ``crop`` keeps the top-left ``crop`` x ``crop`` pixels (the geometry of
    the first pixel does not move). ``repeat`` writes each file that many times (duplicates).
    """
    import pydicom

    src = pydicom.dcmread(base)
    if src.file_meta.TransferSyntaxUID.is_compressed:
        src.decompress()
    arr = src.pixel_array
    if crop:
        arr = arr[:crop, :crop].copy()
        src.Rows, src.Columns = arr.shape
    iop = np.array([float(v) for v in src.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ipp0 = np.array([float(v) for v in src.ImagePositionPatient])
    step = float(getattr(src, "SliceThickness", 0) or 2.0)
    series_uid = _uid(seed + "series")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(v, s) for v in range(len(volumes)) for s in range(n_slices)]
    order = np.random.default_rng(0).permutation(len(jobs)) if shuffle else range(len(jobs))
    for n, j in enumerate(order):
        v, s = jobs[j]
        ds = copy.deepcopy(src)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = _uid(f"{seed}-{v}-{s}")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = v * n_slices + s + 1
        ds.ImagePositionPatient = [f"{x:.4f}" for x in ipp0 + s * step * normal]
        ds.SliceThickness = f"{step:g}"
        for key, value in {**(common or {}), **volumes[v]}.items():
            if isinstance(key, tuple) and isinstance(key[0], str):
                ds.private_block(key[1], key[0], create=True).add_new(key[2], key[3], value)
            elif isinstance(key, tuple):
                ds.add_new(key[:2], key[2], value)
            else:
                setattr(ds, key, value)
        pixels = np.roll(arr, (3 * s, 5 * v), axis=(0, 1)).astype(arr.dtype)
        ds.PixelData = pixels.tobytes()
        for r in range(repeat):
            ds.save_as(out / f"IM{n:04d}_{r}.dcm", enforce_file_format=True)
    return out


def run_dcm2niix_all(exe: str, source: Path, out: Path, *extra: str) -> list[Path]:
    """Convert ``source`` with dcm2niix (BIDS sidecars on); the NIfTI files it wrote, sorted."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, "-z", "n", "-b", "y", "-ba", "n", *extra, "-f", "ref", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(out.glob("*.nii"))


def sidecar(nii: Path) -> dict[str, Any]:
    return json.loads(nii.with_suffix(".json").read_text())


def canonical_4d(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(arr), affine))
    return np.asanyarray(img.dataobj), img.affine


def build_enhanced(
    base: str | Path, out: Path, volumes: list[dict[str, Any]], *, n_slices: int = 4
) -> Path:
    """One Enhanced MR multi-frame file from a real slice: per-frame functional groups.

    ``volumes[v]`` maps a functional-group macro keyword (``MREchoSequence``,
    ``MRDiffusionSequence``, ``CardiacSynchronizationSequence``) to the attributes of its
    item for volume ``v``. Frames are stored volume by volume; DimensionIndexValues hold
    (volume, in-stack position), 1-based.
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    src = pydicom.dcmread(base)
    arr = src.pixel_array
    iop = [float(v) for v in src.ImageOrientationPatient]
    normal = np.cross(iop[:3], iop[3:])
    ipp0 = np.array([float(v) for v in src.ImagePositionPatient])
    step = float(getattr(src, "SliceThickness", 0) or 2.0)
    ds = copy.deepcopy(src)
    for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
               "EchoTime", "RescaleSlope", "RescaleIntercept", "InstanceNumber"):  # fmt: skip
        if kw in ds:
            delattr(ds, kw)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid("enhanced")
    ds.SeriesInstanceUID = _uid("enhanced-series")
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = src.ImageOrientationPatient
    measures.PixelSpacing = src.PixelSpacing
    measures.SliceThickness = f"{step:g}"
    shared.PlaneOrientationSequence = Sequence([orient])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items, frames = [], []
    for v, attrs in enumerate(volumes):
        for s in range(n_slices):
            item, pos, content = Dataset(), Dataset(), Dataset()
            pos.ImagePositionPatient = [f"{x:.4f}" for x in ipp0 + s * step * normal]
            content.DimensionIndexValues = [v + 1, s + 1]
            content.StackID = "1"
            content.InStackPositionNumber = s + 1
            item.PlanePositionSequence = Sequence([pos])
            item.FrameContentSequence = Sequence([content])
            for macro, values in attrs.items():
                inner = Dataset()
                for kw, val in values.items():
                    setattr(inner, kw, val)
                setattr(item, macro, Sequence([inner]))
            items.append(item)
            frames.append(np.roll(arr, (3 * s, 5 * v), axis=(0, 1)))
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    from pydicom.datadict import tag_for_keyword

    org_uid = _uid("enhanced-dims")
    org = Dataset()
    org.DimensionOrganizationUID = org_uid
    ds.DimensionOrganizationSequence = Sequence([org])
    pointers = []
    macro, values = next(iter(volumes[0].items()))
    for seq_kw, kw in (
        (macro, next(iter(values))),
        ("FrameContentSequence", "InStackPositionNumber"),
    ):
        d = Dataset()
        d.DimensionOrganizationUID = org_uid
        d.DimensionIndexPointer = tag_for_keyword(kw)
        d.FunctionalGroupPointer = tag_for_keyword(seq_kw)
        pointers.append(d)
    ds.DimensionIndexSequence = Sequence(pointers)
    ds.NumberOfFrames = len(items)
    ds.PixelData = np.stack(frames).astype(arr.dtype).tobytes()
    out.mkdir(parents=True, exist_ok=True)
    ds.save_as(out / "enhanced.dcm", enforce_file_format=True)
    return out

"""Write a label map on a DICOM series' grid as a DICOM SEG (highdicom does the encoding).

The SEG references the source series and its Frame of Reference, carries the source's own
Patient/Study attributes (highdicom copies them from the first source image, nothing else),
and codes every segment from the structure vocabulary in :mod:`medai_lab.io.structures`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab.atomic import atomic_path
from medai_lab.errors import MedaiError
from medai_lab.io.geometry import stack_geometry
from medai_lab.io.seg_grid import grid_map, onto_grid, same_grid
from medai_lab.io.seg_read import value_counts
from medai_lab.io.structures import Code, match_structure
from medai_lab.io.volume import Volume

# Names the vocabulary does not know are still written, coded as generic tissue (SCT 85756007,
# valid in CID 7150 and as a type), so any viewer shows them; the label keeps the name.
GENERIC_CODE = Code("SCT", "85756007", "Tissue")
SERIES_NUMBER = 900  # a high number keeps derived objects apart from the scanner's series


@dataclass(frozen=True)
class Algorithm:
    """The model that made a segmentation (goes into the SEG's algorithm identification).

    ``run_id`` is the MLflow run; it is stored as an algorithm parameter and in the segment
    description, so a SEG in the PACS leads back to the run that made it.
    """

    name: str
    version: str
    run_id: str | None = None


@dataclass(frozen=True)
class _Reference:
    datasets: list[Any]  # pydicom headers in slice order k = 0, 1, ...
    affine: np.ndarray  # RAS+ voxel (i, j, k) -> mm
    shape: tuple[int, int, int]


def _load_reference(reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]):
    import pydicom

    from medai_lab.io.discovery import discover_series
    from medai_lab.io.loader import pick_series

    source = reference if isinstance(reference, str | os.PathLike) else list(reference)
    info = pick_series(discover_series(source), None)
    if info.derived_uid or not info.uid:
        raise MedaiError(
            "the reference series has no SeriesInstanceUID: a SEG must reference its source "
            "(assign UIDs first, e.g. with medai-lab deid)"
        )
    if any(h.n_frames != 1 for h in info.headers):
        raise MedaiError("multi-frame reference images are not supported for SEG writing yet")
    geom = stack_geometry(info.headers)
    datasets = [pydicom.dcmread(f.header.path, stop_before_pixels=True) for f in geom.frames]
    for ds in datasets:
        meta = getattr(ds, "file_meta", None)
        if not str(ds.get("SOPClassUID", "") or "").strip() and meta is not None:
            # Seen in real exports: the class only in the file meta. Same value, in memory only.
            ds.SOPClassUID = meta.get("MediaStorageSOPClassUID", "")
        for kw in ("SOPClassUID", "StudyInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if not str(ds.get(kw, "") or "").strip():
                raise MedaiError(
                    f"the reference series has images without {kw}: a SEG must reference its "
                    "source (assign UIDs first, e.g. with medai-lab deid)"
                )
    first = info.headers[0]
    shape = (first.columns, first.rows, len(geom.frames))
    return _Reference(datasets, geom.affine, shape)


def _on_reference_grid(label_map: Volume | np.ndarray, ref: _Reference) -> np.ndarray:
    """The label map as an x-y-z (or x-y-z-segment) array in the reference's voxel order."""
    if isinstance(label_map, Volume):
        arr = np.asarray(label_map.array)
        gmap = grid_map(label_map.affine, arr.shape, ref.affine, what="the label map's voxels")
        if not same_grid(gmap, arr.shape, ref.shape):
            raise MedaiError(
                f"the label map ({'x'.join(map(str, arr.shape))}) does not cover the reference "
                f"series' grid ({'x'.join(map(str, ref.shape))}) voxel for voxel"
            )
        if gmap.axes == (0, 1, 2) and gmap.signs == (1, 1, 1):
            return arr  # already in the reference's voxel order: no copy
        arr, _ = onto_grid(arr, gmap, ref.shape)
        return arr
    arr = np.asarray(label_map)
    if arr.shape[:3] != ref.shape or arr.ndim not in (3, 4):
        raise MedaiError(
            f"label array shape {arr.shape} does not match the reference series "
            f"({'x'.join(map(str, ref.shape))}, x-y-z order)"
        )
    return arr


def _present_values(arr: np.ndarray) -> list[int]:
    """Label values > 0 in an integer array (bincount in slabs: no sort, bounded memory)."""
    if arr.dtype.kind == "b":
        return [1] if arr.any() else []
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.rint(arr)):
        raise MedaiError(
            "the label map holds non-integer values (probabilities need fractional=True "
            "and an x-y-z-segment array)"
        )
    hi = arr.max()
    if arr.dtype.kind != "u" and arr.min() < 0:
        raise MedaiError("the label map holds negative values")
    if hi > np.iinfo(np.uint16).max:
        raise MedaiError(f"label value {int(hi)} is too large (at most 65535)")
    counts = value_counts(arr if arr.dtype.kind in "iu" else arr.astype(np.uint16), int(hi) + 1)
    return [int(v) for v in np.nonzero(counts)[0] if v > 0]


def _frames(arr: np.ndarray) -> np.ndarray:
    """x-y-z labels as contiguous (slice, row, column) frames, the order highdicom walks.

    Free for F-ordered arrays (NIfTI, load_series); C-ordered ones are copied in tiles that
    stay in cache (2-3x faster than one strided copy of a 512x512x300 volume).
    """
    view = np.transpose(arr, (2, 1, 0))
    if view.flags.c_contiguous:
        return view
    out = np.empty(view.shape, dtype=arr.dtype)
    for j in range(0, arr.shape[1], 16):
        for i in range(0, arr.shape[0], 64):
            out[:, j : j + 16, i : i + 64] = arr[i : i + 64, j : j + 16].transpose(2, 1, 0)
    return out


def _coded(code: Code) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _descriptions(names: list[str], algorithm: Algorithm) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    params = {"mlflow_run_id": algorithm.run_id} if algorithm.run_id else None
    ident = hd.AlgorithmIdentificationSequence(
        name=algorithm.name,
        family=codes.cid7162.ArtificialIntelligence,
        version=algorithm.version,
        parameters=params,
    )
    out = []
    for number, name in enumerate(names, start=1):
        structure = match_structure(name)
        category = structure.category if structure else GENERIC_CODE
        prop = structure.code if structure else GENERIC_CODE
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=name[:64],
            segmented_property_category=_coded(category),
            segmented_property_type=_coded(prop),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=ident,
        )
        text = f"{algorithm.name} {algorithm.version}"
        if algorithm.run_id:
            text += f", MLflow run {algorithm.run_id}"
        desc.SegmentDescription = text[:64]  # LO: at most 64 characters
        out.append(desc)
    return out


def write_seg(
    label_map: Volume | np.ndarray,
    reference: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    labels: Mapping[int, str] | None = None,
    algorithm: Algorithm | None = None,
    series_description: str = "MedAI Lab segmentation",
    fractional: bool = False,
    omit_empty_frames: bool = True,
) -> Path:
    """Write ``label_map`` as a DICOM SEG that references the series ``reference``.

    Parameters
    ----------
    label_map
        Integer labels on the reference series' grid: a :class:`Volume` (any axis order of the
        same voxels, e.g. from :func:`load_nifti`) or an x-y-z array of the reference's shape.
        With ``fractional=True`` also an x-y-z-segment float array of probabilities in [0, 1].
    reference
        The source DICOM series: its folder or its files.
    out
        The SEG file to write (replaced if it exists; written to a temporary name first).
    labels
        Label value -> name (the segment label; codes come from the structure vocabulary,
        unknown names are coded as generic tissue). Default: ``label_<value>``.
    algorithm
        The model (name, version, MLflow run id). Default: MedAI Lab itself.
    fractional
        Store a FRACTIONAL (probability) SEG instead of a BINARY one.
    omit_empty_frames
        Leave out frames without a segmented pixel (smaller files; any reader copes).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    MedaiError
        One line: the reference is not one series with UIDs, the label map is not on its
        grid, values are negative or non-integer, a label value has no name, or it is empty.
    """
    import highdicom as hd

    from medai_lab import __version__

    algorithm = algorithm or Algorithm("MedAI Lab", __version__)
    ref = _load_reference(reference)
    arr = _on_reference_grid(label_map, ref)
    if arr.ndim == 4:
        if not fractional:
            raise MedaiError("a 4-D (x-y-z-segment) array is written only with fractional=True")
        if arr.dtype.kind not in "fiub" or arr.min() < 0 or arr.max() > 1:
            raise MedaiError("probabilities must lie between 0 and 1")
        values = list(range(1, arr.shape[3] + 1))
        pixels = np.ascontiguousarray(np.transpose(arr, (2, 1, 0, 3)), dtype=np.float32)
    else:
        values = _present_values(arr)
        if not values:
            raise MedaiError("the label map has no labelled voxel: a SEG needs a segment")
        small = np.uint8 if values[-1] <= 255 else np.uint16
        if arr.dtype.kind != "u" or arr.dtype.itemsize > np.dtype(small).itemsize:
            arr = arr.astype(small)
        if values != list(range(1, len(values) + 1)):
            # highdicom takes a label map whose values are the segment numbers 1..N.
            lut = np.zeros(values[-1] + 1, dtype=small)
            lut[values] = np.arange(1, len(values) + 1)
            arr = lut[arr]
        pixels = _frames(arr)
    names = []
    for v in values:
        name = (labels or {}).get(v) if labels is not None else f"label_{v}"
        if not name:
            raise MedaiError(f"label value {v} is in the label map but has no name in labels")
        names.append(str(name))
    seg = hd.seg.Segmentation(
        source_images=ref.datasets,
        pixel_array=pixels,
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=_descriptions(names, algorithm),
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedAI Lab",
        manufacturer_model_name=algorithm.name[:64],
        software_versions=f"medai-lab {__version__}",
        device_serial_number="none",
        fractional_type="PROBABILITY",
        content_label="SEGMENTATION",
        content_description=series_description[:64],
        omit_empty_frames=omit_empty_frames,
    )
    seg.SeriesDescription = series_description[:64]
    target = Path(out)
    with atomic_path(target) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return target

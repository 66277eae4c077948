"""DICOM RTSTRUCT -> a label map on the grid of the image it was drawn on.

Decisions (each one tested in tests/io/test_rtstruct.py):

* Geometry: contour points are DICOM patient coordinates (LPS mm). They go to the reference
  grid through its full affine (RAS+, so x and y change sign), which also covers oblique and
  flipped series. A CLOSED_PLANAR contour belongs to the slice nearest to it along the slice
  normal when all its points lie within ``tolerance_mm`` of that slice (default: half the slice
  step); it is then filled in that slice's plane.
* Fill: a voxel is inside when its centre is inside the contour (plastimatch's rule). All
  contours of an ROI on one slice are combined with the even-odd rule: holes and nested islands
  drawn as separate contours come out right (plastimatch ``--xor-contours``).
* POINT contours mark their nearest voxel (a warning says so). OPEN_PLANAR / OPEN_NONPLANAR
  contours mark the voxels the line passes through (also with a warning); they are not filled.
* Contours off the image are never dropped silently: a contour beyond the first/last slice or
  between slices (further than the tolerance) is skipped, a contour reaching past the image
  in-plane is clipped to it, and each ROI where that happened gets one warning line.
* Overlaps between labels follow :func:`medai_lab.io.labelmap.resolve_overlaps`: with the
  default ``"later"`` the higher label value wins; ``"smaller"`` keeps the smaller label;
  ``"error"`` refuses overlaps. ROIs filling the same label are united.
* Refused with one line (:class:`MedaiError`): not an RTSTRUCT, frame of reference differs from
  the image's, two ROIs with the same name, damaged contour data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.labelmap import (
    LabelMap,
    assign_labels,
    label_dtype,
    paint,
    paint_order,
)
from medai_lab.io.rtstruct_fill import (
    fill_even_odd,
    lps_to_voxel,
    nearest_plane_only,
    polyline_voxels,
    voxel_part,
)
from medai_lab.io.volume import Volume

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_CONTOUR_DATA = 0x30060050
_ROI_CONTOUR_SEQUENCE = 0x30060039
_GEOMETRIC_TYPE = 0x30060042
_CLOSED = {"CLOSED_PLANAR", "CLOSED_PLANAR_XOR"}
_OPEN = {"OPEN_PLANAR", "OPEN_NONPLANAR"}


def _read(path: str | Path, *, header_only: bool = False):
    """The dataset, or one MedaiError line when the file is not an RTSTRUCT."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    def stop(tag, _vr, _length) -> bool:
        return header_only and tag >= _ROI_CONTOUR_SEQUENCE

    try:
        with open(path, "rb") as fh:
            ds = read_partial(fh, stop_when=stop, force=True)
    except FileNotFoundError as err:
        raise MedaiError("RTSTRUCT file not found") from err
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as err:
        raise MedaiError("not a readable DICOM file (expected an RTSTRUCT)") from err
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop != RTSTRUCT_SOP_CLASS and (sop or str(ds.get("Modality", "")) != "RTSTRUCT"):
        kind = str(ds.get("Modality", "") or "") or "no modality"
        raise MedaiError(f"not an RTSTRUCT ({kind}); give the structure set file")
    if "StructureSetROISequence" not in ds:
        raise MedaiError("RTSTRUCT has no Structure Set ROI Sequence")
    return ds


def _frames(ds) -> tuple[list[str], list[str], list[str]]:
    """Frames of reference, referenced series UIDs and referenced study UIDs of a structure set."""
    frames: list[str] = []
    series: list[str] = []
    studies: list[str] = []
    for ref in ds.get("ReferencedFrameOfReferenceSequence", []):
        if ref.get("FrameOfReferenceUID"):
            frames.append(str(ref.FrameOfReferenceUID))
        for study in ref.get("RTReferencedStudySequence", []):
            if study.get("ReferencedSOPInstanceUID"):
                studies.append(str(study.ReferencedSOPInstanceUID))
            series += [
                str(s.SeriesInstanceUID)
                for s in study.get("RTReferencedSeriesSequence", [])
                if s.get("SeriesInstanceUID")
            ]
    for roi in ds.StructureSetROISequence:
        if roi.get("ReferencedFrameOfReferenceUID"):
            frames.append(str(roi.ReferencedFrameOfReferenceUID))
    return list(dict.fromkeys(frames)), list(dict.fromkeys(series)), list(dict.fromkeys(studies))


def _roi_names(ds) -> list[tuple[int, str, str | None]]:
    """(ROI number, name, frame of reference) in file order; unnamed ROIs get 'ROI <n>'."""
    out = []
    for roi in ds.StructureSetROISequence:
        number = int(roi.get("ROINumber", 0) or 0)
        name = str(roi.get("ROIName", "") or "").strip() or f"ROI {number}"
        frame = str(roi.get("ReferencedFrameOfReferenceUID", "") or "") or None
        out.append((number, name, frame))
    return out


def rtstruct_references(path: str | Path) -> dict:
    """What an RTSTRUCT refers to, from its header only (contour data is not read).

    Returns
    -------
    dict
        ``frame_of_reference_uid`` (the first one, or ``None``), ``frame_of_reference_uids``,
        ``series_uids`` (referenced image series), ``study_uid`` (the structure set's study, else
        the referenced study), ``referenced_study_uids``, ``roi_names`` (file order) and
        ``sop_instance_uid``.
    """
    ds = _read(path, header_only=True)
    frames, series, studies = _frames(ds)
    own_study = str(ds.get("StudyInstanceUID", "") or "") or None
    return {
        "frame_of_reference_uid": frames[0] if frames else None,
        "frame_of_reference_uids": frames,
        "series_uids": series,
        "study_uid": own_study or (studies[0] if studies else None),
        "referenced_study_uids": studies,
        "roi_names": [name for _, name, _ in _roi_names(ds)],
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "") or "") or None,
    }


def _points(items: list) -> tuple[np.ndarray, np.ndarray]:
    """All ContourData of some contour items as one (N, 3) array plus the point count of each.

    The raw Decimal String bytes are parsed in one go: pydicom's per-value DS objects cost
    microseconds each, and a structure set holds millions of values.
    """
    chunks: list[str] = []
    counts = np.zeros(len(items), dtype=np.int64)
    for n, item in enumerate(items):
        elem = item.get_item(_CONTOUR_DATA)
        raw = None if elem is None else elem.value
        if raw is None or (isinstance(raw, bytes | bytearray | str) and not raw.strip()):
            continue
        if isinstance(raw, bytes | bytearray):
            text = raw.decode("ascii", "replace")
        elif isinstance(raw, Sequence) and not isinstance(raw, str):
            text = "\\".join(str(v) for v in raw)
        else:
            text = str(raw)
        values = text.count("\\") + 1
        if values % 3:
            raise MedaiError("RTSTRUCT contour data is damaged (coordinates are not triplets)")
        counts[n] = values // 3
        chunks.append(text.replace("\\", " ").replace("\x00", " "))
    try:
        with warnings.catch_warnings():
            # numpy reports text it cannot parse with a DeprecationWarning; make it an error.
            warnings.simplefilter("error", DeprecationWarning)
            flat = np.fromstring(" ".join(chunks), sep=" ") if chunks else np.zeros(0)
    except (ValueError, DeprecationWarning) as err:
        raise MedaiError("RTSTRUCT contour data is damaged (not numbers)") from err
    if flat.size != 3 * int(counts.sum()) or not np.all(np.isfinite(flat)):
        raise MedaiError("RTSTRUCT contour data is damaged (empty or not finite values)")
    return flat.reshape(-1, 3), counts


def _text(item, tag: int) -> str:
    """A short text element read without pydicom's per-element conversion (upper case)."""
    elem = item.get_item(tag)
    raw = None if elem is None else elem.value
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("ascii", "replace")
    return str(raw or "").strip(" \x00").upper()


@dataclass
class _Roi:
    """Voxels of one ROI on the grid, in the (k, j, i) order the painter uses."""

    parts: list[tuple[tuple[slice, ...], np.ndarray]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(int(np.count_nonzero(m)) for _, m in self.parts)


def _rasterise(items: list, name: str, grid: Volume, tol_mm: float) -> _Roi:
    ni, nj, nk = grid.shape
    step = grid.spacing[2]
    roi = _Roi()
    if not items:
        return roi
    pts, counts = _points(items)
    ijk = lps_to_voxel(pts, grid.affine)
    ends = np.cumsum(counts)
    polygons, slices, planes, marks = [], [], [], []
    outside = between = clipped = few = 0
    kinds: set[str] = set()
    for item, n, end in zip(items, counts, ends, strict=True):
        if n == 0:
            continue
        c = ijk[end - n : end]
        kind = _text(item, _GEOMETRIC_TYPE) or "CLOSED_PLANAR"
        if kind in _CLOSED:
            if n < 3:
                few += 1
                continue
            k = int(np.rint(c[:, 2].mean()))
            if not 0 <= k < nk:
                outside += 1
                continue
            if float(np.abs(c[:, 2] - k).max()) * step > tol_mm + 1e-6:
                between += 1
                continue
            lo, hi = c[:, :2].min(axis=0), c[:, :2].max(axis=0)
            if hi[0] < -0.5 or hi[1] < -0.5 or lo[0] > ni - 0.5 or lo[1] > nj - 0.5:
                outside += 1
                continue
            if lo[0] < -0.5 or lo[1] < -0.5 or hi[0] > ni - 0.5 or hi[1] > nj - 0.5:
                clipped += 1
            polygons.append(c[:, :2])
            slices.append(k)
            planes.append(float(c[:, 2].mean()))
        elif kind == "POINT" or kind in _OPEN:
            kinds.add(kind)
            vox = polyline_voxels(c if kind != "POINT" else c[:1], grid.shape)
            if len(vox) == 0:
                outside += 1
            marks.append(vox)
        else:
            roi.warnings.append(f"ROI {name!r}: contour type {kind!r} is not supported, skipped")
    keep = nearest_plane_only(np.asarray(planes), np.asarray(slices, dtype=np.int64))
    stacked = int(np.count_nonzero(~keep))
    polygons = [p for p, kept in zip(polygons, keep, strict=True) if kept]
    filled = fill_even_odd(polygons, np.asarray(slices, dtype=np.int64)[keep], grid.shape)
    if filled is not None:
        roi.parts.append(filled)
    if marks and sum(len(m) for m in marks):
        roi.parts.append(voxel_part(np.concatenate(marks)))
    if "POINT" in kinds:
        roi.warnings.append(f"ROI {name!r}: POINT contours mark their nearest voxel")
    if kinds & _OPEN:
        roi.warnings.append(f"ROI {name!r}: open contours mark the voxels they pass, not filled")
    for count, what in (
        (outside, "lie outside the image and were skipped"),
        (between, f"lie between or across slices (> {tol_mm:.3g} mm off one) and were skipped"),
        (clipped, "reach past the image edge and were clipped to it"),
        (few, "have fewer than 3 points and were skipped"),
        (stacked, "lie in another plane of an already contoured slice and were skipped"),
    ):
        if count:
            roi.warnings.append(f"ROI {name!r}: {count} contour(s) {what}")
    return roi


def _check_frame(frames: list[str], reference: Volume, warnings: list[str]) -> str | None:
    image_frame = str(reference.meta.get("frame_of_reference_uid") or "") or None
    if image_frame and frames and image_frame not in frames:
        raise MedaiError(
            "RTSTRUCT frame of reference differs from the image's: it was drawn on another scan"
        )
    if not image_frame or not frames:
        warnings.append("frame of reference not checked: the image or the RTSTRUCT has none")
    return image_frame


def read_rtstruct(
    path: str | Path,
    reference: Volume,
    *,
    labels: Mapping[int, str] | None = None,
    synonyms: Mapping[str, str] | None = None,
    overlap: str = "later",
    tolerance_mm: float | None = None,
) -> LabelMap:
    """Rasterise an RTSTRUCT onto the grid of ``reference`` (see the module notes for rules).

    Parameters
    ----------
    path
        The RTSTRUCT file.
    reference
        The image the structures belong to (from :func:`medai_lab.io.load_series`); its
        ``meta["frame_of_reference_uid"]`` is checked against the structure set's.
    labels
        Task labels, value -> name (``{1: "lung", 2: "nodule"}``); ROI names map onto them
        through the structure vocabulary. ``None``: each ROI gets its own value, in file order.
    synonyms
        More ROI names -> structure or label names.
    overlap
        ``"later"`` (higher label value wins), ``"smaller"`` or ``"error"``.
    tolerance_mm
        Largest distance of a contour from its slice plane; default half the slice step.

    Returns
    -------
    LabelMap
        Label volume on the reference grid with labels, sources, unmapped and empty ROIs and
        warnings.
    """
    ds = _read(path)
    warnings: list[str] = []
    frames, series, _ = _frames(ds)
    image_frame = _check_frame(frames, reference, warnings)
    image_series = reference.meta.get("series_uid")
    if image_series and series and image_series not in series:
        warnings.append("RTSTRUCT refers to another series of the same frame of reference")
    rois = _roi_names(ds)
    names = [name for _, name, _ in rois]
    mapping, unmapped = assign_labels(names, labels, synonyms)
    label_names = (
        {int(v): str(n) for v, n in labels.items()}
        if labels is not None
        else {v: n for n, v in mapping.items()}
    )
    step = reference.spacing[2]
    tol = 0.5 * step if tolerance_mm is None else float(tolerance_mm)
    if tol < 0:
        raise MedaiError("tolerance_mm must not be negative")
    contours: dict[int, list] = {}
    for rc in ds.get("ROIContourSequence", []):
        number = int(rc.get("ReferencedROINumber", 0) or 0)
        contours.setdefault(number, []).extend(rc.get("ContourSequence", []))

    known = {number for number, _, _ in rois}
    orphans = sorted(set(contours) - known)
    if orphans:
        warnings.append(f"contours of {len(orphans)} ROI number(s) missing from the structure set")
    wanted = sorted(
        ((mapping[name], i) for i, (_, name, _) in enumerate(rois) if name in mapping),
        key=lambda t: t[0],
    )
    empty: list[str] = []
    painted: list[tuple[int, str, _Roi]] = []
    for value, i in wanted:
        number, name, frame = rois[i]
        if frame and image_frame and frame != image_frame:
            warnings.append(f"ROI {name!r} is in another frame of reference, skipped")
            empty.append(name)
            continue
        roi = _rasterise(contours.get(number, []), name, reference, tol)
        warnings.extend(roi.warnings)
        if roi.parts:
            painted.append((value, name, roi))
        else:
            empty.append(name)

    ni, nj, nk = reference.shape
    dtype = label_dtype(max(label_names, default=1))
    out = np.zeros((nk, nj, ni), dtype=dtype)  # (k, j, i): the fill's rows are contiguous
    sources: dict[int, list[str]] = {}
    order = paint_order([v for v, _, _ in painted], [r.size for _, _, r in painted], overlap)
    taken: dict[int, int] = {}
    for idx in order:
        value, name, roi = painted[idx]
        sources.setdefault(value, []).append(name)
        for region, mask in roi.parts:
            taken[value] = taken.get(value, 0) + paint(out, value, region, mask, overlap)
    for value, n in taken.items():
        if n:
            warnings.append(
                f"label {label_names[value]!r} took {n} voxels from other labels "
                f"(overlap rule {overlap!r})"
            )
    volume = Volume(
        out.transpose(2, 1, 0),  # x-y-z, Fortran-ordered like the loader's arrays
        reference.affine.copy(),
        {"source": "rtstruct", "frame_of_reference_uid": image_frame, "label_names": label_names},
    )
    sources = {v: sources[v] for v in sorted(sources)}
    return LabelMap(volume, label_names, sources, unmapped, empty, warnings)

"""A label map -> DICOM RTSTRUCT for the image series it was drawn on (for radiotherapy tools).

Contours follow voxel edges (each label's boundary cracks on each slice, linked into closed
loops), so a reader that fills voxels whose centres are inside, with the even-odd rule across
the contours of a slice (ours; plastimatch with ``--xor-contours``), gets the label map back
exactly. Holes come out as separate contours inside their outer contour.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.labelmap import LabelMap
from medai_lab.io.rtstruct import RTSTRUCT_SOP_CLASS
from medai_lab.io.volume import Volume

_LPS = np.array([-1.0, -1.0, 1.0])
# directions of the four edge kinds as (di, dj)
_DIRS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def slice_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Closed boundary loops of a 2-D mask (x-y order) as (n, 2) voxel-corner coordinates.

    Each loop has the inside on its left; vertices only where the direction changes.
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    # vertical cracks between m[i-1, j] and m[i, j]: corner (i, j) -> (i, j + 1) or back
    a, b = m[:-1, :], m[1:, :]
    vi, vj = np.nonzero(a != b)
    up = a[vi, vj]  # inside on the low-i side: travel +j
    v_start = np.c_[vi + 1, vj + np.where(up, 0, 1)]
    v_dir = np.where(up, 1, 3)
    # horizontal cracks between m[i, j-1] and m[i, j]
    a, b = m[:, :-1], m[:, 1:]
    hi_, hj = np.nonzero(a != b)
    right = b[hi_, hj]  # inside on the high-j side: travel +i
    h_start = np.c_[hi_ + np.where(right, 0, 1), hj + 1]
    h_dir = np.where(right, 0, 2)
    start = np.concatenate([v_start, h_start])
    kind = np.concatenate([v_dir, h_dir])
    if not len(start):
        return []
    end = start + _DIRS[kind]
    width = m.shape[1] + 1
    s_id, e_id = start[:, 0] * width + start[:, 1], end[:, 0] * width + end[:, 1]
    order = np.argsort(s_id, kind="stable")
    first = np.searchsorted(s_id[order], e_id)
    nxt = order[np.minimum(first, len(order) - 1)]
    # Saddle corners have two ways out: turn left (towards the inside), so diagonal neighbours
    # get loops of their own.
    two = (first + 1 < len(order)) & (s_id[order[np.minimum(first + 1, len(order) - 1)]] == e_id)
    alt = order[np.minimum(first + 1, len(order) - 1)]
    left_turn = (kind[alt] - kind) % 4 == 1
    nxt = np.where(two & left_turn, alt, nxt)
    loops, seen = [], np.zeros(len(start), dtype=bool)
    for e0 in range(len(start)):
        if seen[e0]:
            continue
        chain = []
        e = e0
        while not seen[e]:
            seen[e] = True
            chain.append(e)
            e = int(nxt[e])
        chain = np.array(chain)
        turn = kind[chain] != kind[np.roll(chain, 1)]
        loops.append(start[chain[turn]] - 1.5)  # padded corner -> voxel-centre coordinates
    return loops


def _series_headers(reference: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]):
    import pydicom

    src = [reference] if isinstance(reference, str | os.PathLike) else list(reference)
    files: list[Path] = []
    for item in map(Path, src):
        files += sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
    headers = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue
        if "ImagePositionPatient" in ds and "SOPInstanceUID" in ds:
            headers.append(ds)
    if not headers:
        raise MedaiError("reference series has no DICOM images with positions")
    if len({str(h.get("SeriesInstanceUID", "")) for h in headers}) > 1:
        raise MedaiError("reference holds several series; give the folder of one series")
    return headers


def _slice_instances(headers, volume: Volume) -> dict[int, tuple[str, str]]:
    """Slice index -> (SOP class, SOP instance) of the reference image at that slice."""
    if len(headers) != volume.shape[2]:
        raise MedaiError("reference series and label map differ in their number of slices")
    if any((int(h.Columns), int(h.Rows)) != volume.shape[:2] for h in headers):
        raise MedaiError("reference images and label map slices differ in size")
    inv = np.linalg.inv(volume.affine)
    out: dict[int, tuple[str, str]] = {}
    for h in headers:
        ras = np.array([float(v) for v in h.ImagePositionPatient]) * _LPS
        ijk = ras @ inv[:3, :3].T + inv[:3, 3]
        k = int(np.rint(ijk[2]))
        if np.abs(ijk - [0, 0, k]).max() > 0.05 or not 0 <= k < volume.shape[2]:
            raise MedaiError("label map is not on the reference series' grid")
        out[k] = (str(h.SOPClassUID), str(h.SOPInstanceUID))
    if len(out) != volume.shape[2]:
        raise MedaiError("reference series has two images at one slice position")
    return out


def write_rtstruct(
    labels: LabelMap | Volume,
    reference: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    names: Mapping[int, str] | None = None,
    series_description: str = "MedAI Lab structures",
) -> Path:
    """Write the labels of a label map as an RTSTRUCT referencing the reference image series.

    Parameters
    ----------
    labels
        A :class:`LabelMap` (its names are used) or an integer label :class:`Volume` on the grid
        of the reference series.
    reference
        The image series folder (or its files): patient, study, frame of reference and the
        image instances the contours refer to come from there.
    out
        The file to write (written to a temporary name, then renamed).
    names
        Label value -> ROI name (default: the LabelMap's names, else ``label_<value>``).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from medai_lab.io.structures import match_structure

    volume = labels.volume if isinstance(labels, LabelMap) else labels
    arr = np.asarray(volume.array)
    if not np.issubdtype(arr.dtype, np.integer):
        raise MedaiError("label map must hold integer labels")
    values = [int(v) for v in np.unique(arr) if v > 0]
    names = dict(names or (labels.labels if isinstance(labels, LabelMap) else {}))
    headers = _series_headers(reference)
    instances = _slice_instances(headers, volume)
    first = headers[0]
    frame = str(first.get("FrameOfReferenceUID", "") or "")
    if not frame:
        raise MedaiError("reference series has no frame of reference")

    ds = Dataset()
    for key in _PATIENT_STUDY:
        setattr(ds, key, first.get(key, ""))
    now = _dt.datetime.now()
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP_CLASS, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 901
    ds.SeriesDescription, ds.OperatorsName, ds.Manufacturer = series_description, "", "MedAI Lab"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "MedAI Lab"
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    images = []
    for k in sorted(instances):
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = instances[k]
        images.append(ref)
    series = Dataset()
    series.SeriesInstanceUID = str(first.SeriesInstanceUID)
    series.ContourImageSequence = Sequence(images)
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # (retired) detached study, as TPSs
    study.ReferencedSOPInstanceUID = str(first.StudyInstanceUID)
    study.RTReferencedSeriesSequence = Sequence([series])
    for_ref = Dataset()
    for_ref.FrameOfReferenceUID = frame
    for_ref.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([for_ref])

    rois, contours, observations = [], [], []
    to_world = volume.affine
    for number, value in enumerate(values, start=1):
        name = names.get(value, f"label_{value}")
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, frame
        roi.ROIName, roi.ROIGenerationAlgorithm = name, "AUTOMATIC"
        rois.append(roi)
        items = []
        ks = np.nonzero((arr == value).any(axis=(0, 1)))[0]
        for k in ks:
            for loop in slice_loops(arr[:, :, k] == value):
                ijk = np.c_[loop, np.full(len(loop), float(k))]
                lps = (ijk @ to_world[:3, :3].T + to_world[:3, 3]) * _LPS
                item = Dataset()
                img = Dataset()
                img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = instances[int(k)]
                item.ContourImageSequence = Sequence([img])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(lps)
                item.ContourData = [f"{v:.4f}".rstrip("0").rstrip(".") or "0" for v in lps.ravel()]
                items.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [int(c) for c in np.random.default_rng(value).integers(40, 256, 3)]
        rc.ContourSequence = Sequence(items)
        contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType, obs.ROIInterpreter = "ORGAN", ""
        structure = match_structure(name)
        if structure is not None:
            code = Dataset()
            code.CodeValue = structure.code.value
            code.CodingSchemeDesignator = structure.code.scheme
            code.CodeMeaning = structure.code.meaning
            obs.RTROIIdentificationCodeSequence = Sequence([code])
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    ds.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 100")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = (
        ds.SOPClassUID,
        ds.SOPInstanceUID,
    )
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

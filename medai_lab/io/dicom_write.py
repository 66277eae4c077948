"""Write a :class:`Volume` as a standard single-frame DICOM image series.

Used by the phantom generator, the demo, tests and benchmarks: any plane, any slice order,
any rescale, so the loader can be checked against dcm2niix on series with known geometry.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_dicom_series(
    volume: Volume,
    out_dir: str | os.PathLike[str],
    *,
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    series_description: str = "MedAI Lab phantom",
    patient_id: str = "PHANTOM-0001",
    patient_name: str = "Phantom^MedAI",
    uid_seed: str | None = None,
    reverse_instance_numbers: bool = False,
    implicit_vr: bool = False,
) -> list[Path]:
    """Write ``volume`` as one DICOM file per slice along its third axis.

    Stored values are ``round((value - intercept) / slope)`` as signed 16-bit integers.
    ``uid_seed`` makes Study/Series/SOP/Frame-of-Reference UIDs reproducible. The series is
    written to a temporary folder and renamed into place, so ``out_dir`` is complete or absent.

    Returns
    -------
    list of Path
        The files, in slice order (k = 0, 1, ...).
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise MedaiError(f"output folder is not empty: {out}")
    stored = _stored_values(volume.array, rescale_slope, rescale_intercept)
    lps = _LPS @ volume.affine
    cols, rows, nslices = volume.shape
    dx, dy, dz = volume.spacing
    row_cos = lps[:3, 0] / dx
    col_cos = lps[:3, 1] / dy
    normal = np.cross(row_cos, col_cos)
    step = lps[:3, 2]
    # DICOM single-frame geometry cannot express a sheared grid (gantry tilt); refuse it.
    if (
        abs(abs(float(np.dot(step / dz, normal))) - 1.0) > 1e-6
        or abs(np.dot(row_cos, col_cos)) > 1e-6
    ):
        raise MedaiError("volume grid is sheared; DICOM slices need an orthogonal grid")

    def uid(tag: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, tag]) if uid_seed else generate_uid()

    study_uid, series_uid, for_uid = uid("study"), uid("series"), uid("for")
    sop_class = _CT_IMAGE_STORAGE if modality == "CT" else _MR_IMAGE_STORAGE
    syntax = ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian
    now = _dt.datetime(2000, 1, 1, 12, 0, 0)  # fixed: phantoms carry no real acquisition date

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    written: list[Path] = []
    try:
        for k in range(nslices):
            sop_uid = uid(f"sop{k}")
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = sop_class
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = syntax
            ds = pydicom.Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = sop_uid
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = for_uid
            ds.PatientName = patient_name
            ds.PatientID = patient_id
            ds.PatientBirthDate = ""
            ds.PatientSex = "O"
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
            ds.AccessionNumber = ""
            ds.ReferringPhysicianName = ""
            ds.StudyID = "1"
            ds.Modality = modality
            ds.Manufacturer = "MedAI Lab"
            ds.SeriesDescription = series_description
            ds.SeriesNumber = 1
            ds.AcquisitionNumber = 1
            n = nslices - k if reverse_instance_numbers else k + 1
            ds.InstanceNumber = n
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.ImagePositionPatient = [_ds(v) for v in (lps @ [0.0, 0.0, k, 1.0])[:3]]
            ds.ImageOrientationPatient = [_ds(v) for v in (*row_cos, *col_cos)]
            ds.PixelSpacing = [_ds(dy), _ds(dx)]
            ds.SliceThickness = _ds(dz)
            ds.SpacingBetweenSlices = _ds(dz)
            ds.SliceLocation = _ds(float(np.dot(lps @ [0.0, 0.0, k, 1.0], [*normal, 0.0])))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = rows, cols
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = 1
            ds.RescaleIntercept = _ds(rescale_intercept)
            ds.RescaleSlope = _ds(rescale_slope)
            if modality == "CT":
                ds.RescaleType = "HU"
                ds.KVP = "120"
            ds.WindowCenter, ds.WindowWidth = "40", "400"
            # Row-major (rows, cols) on disk = our (x, y) slice transposed.
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            path = tmp / f"IM{n:05d}.dcm"
            ds.save_as(path, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=True)
            written.append(out / path.name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _stored_values(array: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    if slope == 0:
        raise MedaiError("rescale slope must not be 0")
    stored = np.rint((np.asarray(array, dtype=np.float64) - intercept) / slope)
    lo, hi = np.iinfo(np.int16).min, np.iinfo(np.int16).max
    if stored.size and (stored.min() < lo or stored.max() > hi):
        raise MedaiError("values do not fit 16-bit storage with this rescale slope/intercept")
    return stored.astype(np.int16)


def _ds(value: float) -> str:
    """A DICOM Decimal String (at most 16 characters) that round-trips as closely as it can."""
    v = float(value)
    if v == 0:
        return "0"
    for digits in range(16, 0, -1):
        text = f"{v:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{v:.6e}"

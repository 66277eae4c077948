"""Helpers for the RTSTRUCT tests and benchmark: real plastimatch runs and hand-made files.

plastimatch is the reference: it writes RTSTRUCTs from binary masks and rasterises RTSTRUCTs
onto a CT. Hand-made RTSTRUCTs (pydicom) cover what plastimatch never writes: holes and
islands as separate contours, POINT/OPEN contours, duplicate names, damaged data.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from medai_lab.io import Volume

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def run_plastimatch(exe: str, *args: str | Path) -> str:
    proc = subprocess.run(
        [exe, "convert", *map(str, args)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"plastimatch failed: {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return proc.stdout


def masks_to_rtstruct(
    exe: str, masks: dict[str, np.ndarray], grid: Volume, ct_dir: Path, work: Path
) -> Path:
    """plastimatch writes an RTSTRUCT for ``ct_dir`` from binary masks on ``grid`` (x-y-z)."""
    import nibabel as nib

    prefix = work / "masks"
    prefix.mkdir(parents=True)
    for name, mask in masks.items():
        img = nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), grid.affine)
        nib.save(img, prefix / f"{name}.nii.gz")
    out = work / "rtss"
    run_plastimatch(exe, "--input-prefix", prefix, "--referenced-ct", ct_dir, "--output-dicom", out)
    (made,) = sorted(out.glob("rtss*.dcm"))
    return made


def plastimatch_rasterise(
    exe: str, rtss: Path, ct_dir: Path, grid: Volume, work: Path, *, xor: bool = False
) -> dict[str, np.ndarray]:
    """plastimatch's rasterisation of every structure, as boolean arrays on ``grid``."""
    import SimpleITK as sitk

    out = work / "plastimatch-prefix"
    extra = ["--xor-contours"] if xor else []
    run_plastimatch(exe, "--input", rtss, "--referenced-ct", ct_dir, "--output-prefix", out, *extra)
    result = {}
    for path in sorted(out.glob("*.mha")):
        result[path.stem] = on_grid(sitk.ReadImage(str(path)), grid) > 0
    return result


def on_grid(img, grid: Volume) -> np.ndarray:
    """A SimpleITK image's voxels in ``grid``'s x-y-z order (the grids must coincide)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(img).T  # x-y-z
    direction = np.array(img.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    theirs = _LPS @ lps
    return resample_same_grid(arr, theirs, grid)


def resample_same_grid(arr: np.ndarray, affine: np.ndarray, grid: Volume) -> np.ndarray:
    """``arr`` (on ``affine``) re-indexed onto ``grid``: only axis swaps and flips allowed."""
    m = np.linalg.inv(affine) @ grid.affine  # our index -> their index
    perm = np.argmax(np.abs(m[:3, :3]), axis=0)  # their axis for each of ours
    sign = np.sign(m[perm, [0, 1, 2]])
    rot = np.zeros((3, 3))
    rot[perm, [0, 1, 2]] = sign
    assert np.allclose(m[:3, :3], rot, atol=1e-3), "grids differ by more than flips and swaps"
    out = np.transpose(arr, perm)
    for ax in range(3):
        if sign[ax] < 0:
            out = np.flip(out, axis=ax)
    assert out.shape == grid.shape, f"grid shapes differ: {out.shape} vs {grid.shape}"
    start = np.rint(m[:3, 3]).astype(int)
    expect = [0 if s > 0 else n - 1 for s, n in zip(sign, arr.shape, strict=True)]
    assert list(start[perm]) == expect, "grids are offset"
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def voxel_to_lps(grid: Volume, ijk: np.ndarray) -> np.ndarray:
    """DICOM patient coordinates (LPS mm) of continuous voxel indices (N, 3)."""
    ras = np.asarray(ijk, dtype=float) @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0])


def circle(ci: float, cj: float, r: float, k: float, n: int = 64) -> np.ndarray:
    """A polygon (voxel indices, N x 3) approximating a circle in slice ``k``."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[ci + r * np.cos(t), cj + r * np.sin(t), np.full(n, float(k))]


def make_rtstruct(
    path: Path,
    grid: Volume,
    rois: dict[str, list[tuple[str, np.ndarray]]],
    *,
    frame_uid: str | None = None,
    series_uid: str | None = None,
    names: list[str] | None = None,
) -> Path:
    """Write a minimal but valid RTSTRUCT with pydicom.

    ``rois`` maps ROI name -> contours ``(geometric type, points)``, points in voxel indices of
    ``grid`` (converted to LPS mm here). ``names`` overrides the ROI names (duplicates).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    frame_uid = frame_uid or grid.meta.get("frame_of_reference_uid") or generate_uid()
    series_uid = series_uid or grid.meta.get("series_uid") or generate_uid()
    study_uid = grid.meta.get("study_uid") or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT
    meta.MediaStorageSOPInstanceUID = sop = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT, sop, "RTSTRUCT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.PatientName, ds.PatientID = "Phantom^MedAI", "PHANTOM-0001"
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = "test", "20000101", "120000"
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = study_uid
    study.RTReferencedSeriesSequence = Sequence([series])
    ref = Dataset()
    ref.FrameOfReferenceUID = frame_uid
    ref.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    roi_items, contour_items, observations = [], [], []
    labels = names or list(rois)
    for number, (name, contours) in enumerate(zip(labels, rois.values(), strict=True), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, frame_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = name, "MANUAL"
        roi_items.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber, rc.ROIDisplayColor = number, [255, 0, 0]
        items = []
        for kind, pts in contours:
            c = Dataset()
            c.ContourGeometricType = kind
            lps = voxel_to_lps(grid, pts)
            c.NumberOfContourPoints = len(lps)
            c.ContourData = [f"{v:.6f}" for v in lps.ravel()]
            items.append(c)
        rc.ContourSequence = Sequence(items)
        contour_items.append(rc)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType, obs.ROIInterpreter = "ORGAN", ""
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(roi_items)
    ds.ROIContourSequence = Sequence(contour_items)
    ds.RTROIObservationsSequence = Sequence(observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def which_plastimatch() -> str | None:
    return shutil.which("plastimatch")

"""Helpers for the SEG tests: test series, dcmqi and dciodvfy runs, independent geometry.

The geometry used to compare with dcmqi is nibabel's closest-canonical orientation plus a
whole-voxel offset, on purpose independent of medai_lab.io.seg_grid (the code under test).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testsupport import missing_component

from medai_lab.io import load_series, write_dicom_series
from medai_lab.io.structures import match_structure
from medai_lab.io.volume import Volume

SHAPE = (40, 36, 12)  # 40*36 pixels a frame: whole bytes when bit-packed
LABELS = {1: "liver", 2: "spleen", 3: "tumour"}
KINDS = ["axial", "reversed", "oblique"]
UID_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def one_line(err: pytest.ExceptionInfo) -> str:
    """The error's text, checked to be one line without anything that looks like a UID."""
    text = str(err.value)
    assert "\n" not in text and not UID_LIKE.search(text), text
    return text


def tool(name: str, package: str) -> str:
    """A real command-line tool (dcmqi's live beside the venv's python), or fail/skip."""
    exe = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        missing_component(f"{name} ({package})")
    return str(exe)


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = (k for k in range(3) if k != axis)
    rot = np.eye(3)
    rot[i, i] = rot[j, j] = c
    rot[i, j], rot[j, i] = -s, s
    return rot


def grid(kind: str) -> np.ndarray:
    """RAS affines of the test series: axial, reversed slice order, oblique."""
    if kind == "axial":
        return np.diag([-0.8, -0.7, 2.0, 1.0])
    if kind == "reversed":  # slices written head to foot, instance numbers counting down
        aff = np.diag([-0.8, -0.7, -2.0, 1.0])
        aff[2, 3] = 40.0
        return aff
    if kind == "oblique":
        aff = np.eye(4)
        aff[:3, :3] = _rotation(0, 0.3) @ _rotation(2, 0.2) @ np.diag([0.8, 0.7, 2.0])
        aff[:3, 3] = [10.0, -5.0, 30.0]
        return aff
    raise ValueError(kind)


def make_series(folder: Path, kind: str, seed: str = "seg") -> tuple[Path, Volume]:
    """A CT series of SHAPE on ``grid(kind)`` and its loaded reference Volume."""
    image = np.linspace(-100, 200, np.prod(SHAPE)).reshape(SHAPE).astype(np.int16)
    write_dicom_series(
        Volume(image, grid(kind)),
        folder,
        uid_seed=f"{seed}-{kind}",
        reverse_instance_numbers=kind == "reversed",
    )
    return folder, load_series(folder)


def phantom_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """Three labels, none symmetric; one touches the first slice, one is a single voxel."""
    lab = np.zeros(shape, np.uint8)
    lab[5:20, 3:10, 2:7] = 1
    lab[22:30, 20:33, 4:11] = 3
    lab[10:12, 3:6, 3] = 3
    lab[1, 1, 0] = 2
    return lab


def dcmqi_meta(labels: dict[int, str]) -> dict:
    """dcmqi's segmentation metadata JSON for one input file: label value -> segment name."""

    def code(c) -> dict:
        return {"CodeValue": c.value, "CodingSchemeDesignator": c.scheme, "CodeMeaning": c.meaning}

    items = []
    for value in sorted(labels):
        s = match_structure(labels[value])
        assert s is not None, labels[value]
        items.append(
            {
                "labelID": value,
                "SegmentLabel": labels[value],
                "SegmentDescription": labels[value],
                "SegmentAlgorithmType": "MANUAL",
                "SegmentedPropertyCategoryCodeSequence": code(s.category),
                "SegmentedPropertyTypeCodeSequence": code(s.code),
                "recommendedDisplayRGBValue": [200, 120, 60],
            }
        )
    return {
        "ContentCreatorName": "Reader^Test",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "dcmqi segmentation",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "BodyPartExamined": "ABDOMEN",
        "segmentAttributes": [items],
    }


def dcmqi_write(
    label_nifti: Path | list[Path], series: Path, out: Path, meta: dict, seg_type: str = "binary"
) -> Path:
    """itkimage2segimage: label image(s) + the source series -> SEG (the reference writer).

    Segments from different label images may overlap (one ``segmentAttributes`` list each).
    """
    images = label_nifti if isinstance(label_nifti, list) else [label_nifti]
    meta_file = out.with_suffix(".json")
    meta_file.write_text(json.dumps(meta))
    exe = tool("itkimage2segimage", "PyPI package dcmqi")
    cmd = [
        exe,
        "--inputImageList",
        ",".join(map(str, images)),
        "--inputDICOMDirectory",
        str(series),
    ]
    cmd += ["--outputDICOM", str(out), "--inputMetadata", str(meta_file)]
    cmd += ["--segmentationType", seg_type]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-800:] + proc.stderr[-800:]
    return out


def dcmqi_read(seg: Path, out_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """segimage2itkimage: SEG -> {segment label: (canonical RAS mask, canonical affine)}."""
    import nibabel as nib

    exe = tool("segimage2itkimage", "PyPI package dcmqi")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--inputDICOM", str(seg), "--outputDirectory", str(out_dir), "-t", "nii"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout[-800:] + proc.stderr[-800:]
    meta = json.loads((out_dir / "meta.json").read_text())
    found = {}
    for n, items in enumerate(meta["segmentAttributes"], start=1):
        img = nib.as_closest_canonical(nib.load(out_dir / f"{n}.nii.gz"))
        found[items[0]["SegmentLabel"]] = (np.asanyarray(img.dataobj) != 0, img.affine)
    return found


def paste_canonical(
    mask: np.ndarray, affine: np.ndarray, ref_shape: tuple[int, ...], ref_affine: np.ndarray
) -> np.ndarray:
    """A canonical (RAS) crop onto a canonical reference grid; fails off the grid."""
    np.testing.assert_allclose(affine[:3, :3], ref_affine[:3, :3], atol=1e-3)
    offset = np.linalg.solve(ref_affine[:3, :3], affine[:3, 3] - ref_affine[:3, 3])
    np.testing.assert_allclose(offset, np.rint(offset), atol=1e-2)
    o = np.rint(offset).astype(int)
    assert np.all(o >= 0) and np.all(o + mask.shape <= np.array(ref_shape)), (o, mask.shape)
    out = np.zeros(ref_shape, bool)
    out[o[0] : o[0] + mask.shape[0], o[1] : o[1] + mask.shape[1], o[2] : o[2] + mask.shape[2]] = (
        mask
    )
    return out


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's error lines for one file (warnings are allowed)."""
    exe = tool("dciodvfy", "Debian package dicom3tools")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False, timeout=60)
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]


def shuffle_seg(src: Path, dst: Path, seed: int = 0) -> Path:
    """The same SEG with its frames and its segment descriptions in a random order."""
    import pydicom
    from pydicom.pixels import pack_bits

    ds = pydicom.dcmread(src)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frames))
    assert not np.array_equal(order, np.arange(len(frames)))
    items = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = [items[i] for i in order]
    ds.PixelData = pack_bits(frames[order])
    segments = list(ds.SegmentSequence)
    ds.SegmentSequence = segments[::-1]
    ds.save_as(dst, enforce_file_format=True)
    return dst


def restamp(
    src: Path,
    dst: Path,
    *,
    seed: str,
    keep_frame_of_reference: bool = True,
    fill_sop_class: bool = False,
) -> Path:
    """A copy of a series with new Study/Series/SOP UIDs (the Basel data has them empty).

    With ``keep_frame_of_reference`` the copy is a sibling series of the same scan. The same
    ``seed`` gives the same UIDs. ``fill_sop_class`` also sets SOPClassUID from the file meta
    (the Basel files have it only there; dcmqi needs it in the dataset, we do not).
    """
    import pydicom
    from pydicom.uid import generate_uid

    dst.mkdir(parents=True)
    study = generate_uid(entropy_srcs=[seed, "study"])
    series = generate_uid(entropy_srcs=[seed, "series"])
    for n, f in enumerate(sorted(p for p in src.iterdir() if p.is_file())):
        ds = pydicom.dcmread(f)
        sop = generate_uid(entropy_srcs=[seed, str(n)])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        if fill_sop_class:
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        if not keep_frame_of_reference:
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[seed, "for"])
        ds.save_as(dst / f"{n:04d}.dcm", enforce_file_format=True)
    return dst

"""``medai-lab cohort``/``convert``/``info`` on a study whose labels are a real plastimatch
RTSTRUCT and a SEG written through highdicom: the label maps that land in the cohort equal the
phantom's own truth, names go through the synonym table, and nothing identifying is written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
import rtstruct_helpers  # tests/io/rtstruct_helpers.py: real plastimatch runs
from testsupport import missing_component

from medai_lab.cli import main
from medai_lab.io import load_nifti, load_series

PATIENT = ("DOE^JANE", "MRN-4711")


def _patient_study(root: Path, src: Path, folder: str, study: str) -> Path:
    """Copy a phantom DICOM series under a folder named after a (fake) patient."""
    out = root / folder
    out.mkdir(parents=True)
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.PatientName, ds.PatientID = PATIENT
        ds.StudyInstanceUID = study
        ds.save_as(out / f.name)
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three lung phantom series of one patient: RTSTRUCT on the first, SEG on the second,
    none on the third; truth label maps kept for comparison."""
    from pydicom.uid import generate_uid

    from medai_lab.datasets.phantom import write_phantom_dataset
    from medai_lab.io.seg import write_seg

    plastimatch = rtstruct_helpers.which_plastimatch()
    if plastimatch is None:
        missing_component("plastimatch (Debian package plastimatch)")
    tmp = tmp_path_factory.mktemp("cohort")
    ph = write_phantom_dataset(tmp / "ph", "lung", 3, fmt="dicom", seed=3, progress=False)
    root = tmp / "export"
    study_uid = generate_uid()
    series, truth = [], []
    for i in range(3):
        series.append(
            _patient_study(root, ph / "imagesTr" / f"lung_{i:03d}", f"DOE_JANE_{i}", study_uid)
        )
        truth.append(load_nifti(ph / "labelsTr" / f"lung_{i:03d}.nii.gz").array.astype(np.uint8))
    grid = load_series(series[0])
    lung, nodule = truth[0] == 1, truth[0] == 2
    half = grid.shape[0] // 2
    left, right = lung.copy(), lung.copy()
    # array axis 0 runs along DICOM columns; which half is patient-left does not matter here
    left[:half], right[half:] = False, False
    couch = np.zeros_like(lung)
    couch[5:20, 5:10, 10:20] = True
    masks = {"Lung_L": left, "LUNG_RT": right, "Nodule_1": nodule, "Couch": couch}
    rtss = rtstruct_helpers.masks_to_rtstruct(plastimatch, masks, grid, series[0], tmp / "pm")
    shutil.copy(rtss, series[0] / "rtss.dcm")
    grid1 = load_series(series[1])
    seg_truth = load_nifti(ph / "labelsTr" / "lung_001.nii.gz")
    write_seg(seg_truth, series[1], series[1] / "seg.dcm", labels={1: "lung", 2: "nodule"})
    return {"root": root, "series": series, "truth": truth, "grid": grid, "grid1": grid1}


def _labels_on(path: Path, grid) -> np.ndarray:
    vol = load_nifti(path)
    assert np.allclose(vol.affine, grid.affine, atol=1e-4)
    return vol.array


def test_info_lists_label_objects_with_their_series(study: dict, capsys) -> None:
    assert main(["info", str(study["root"])]) == 0
    out = capsys.readouterr().out
    assert "2 label object(s)" in out
    assert "RTSTRUCT: 4 ROI(s)" in out and "SEG: 2 segment(s)" in out
    assert "labels series [" in out
    assert "3 series" in out  # label objects are not image series


def test_cohort_from_rtstruct_and_seg(study: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cohort"
    assert main(["cohort", str(study["root"]), str(out), "--task", "lung", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "2 labelled case(s)" in printed and "1 unlabelled" in printed
    assert "Couch" in printed  # unmapped ROI reported
    info = json.loads((out / "dataset.json").read_text())
    assert info["labels"] == {"0": "background", "1": "lung", "2": "nodule"}
    assert info["numTraining"] == 2 and info["numTest"] == 1
    rows = (out / "manifest.csv").read_text().splitlines()
    assert len(rows) == 4
    # Which written case came from which series: match on the image itself.
    images = {p.name: nib.load(p).get_fdata() for p in sorted((out / "imagesTr").iterdir())}
    by_series = {}
    for i, s in enumerate(study["series"][:2]):
        arr = load_series(s).array
        by_series[i] = next(
            n for n, a in images.items() if a.shape == arr.shape and np.allclose(a, arr)
        )
    rt = _labels_on(out / "labelsTr" / by_series[0], study["grid"])
    t0 = study["truth"][0]
    for value in (1, 2):
        assert rtstruct_helpers.dice(rt == value, t0 == value) >= 0.97, value
    assert not np.any(rt[5:20, 5:10, 10:20] == 3)  # the couch is no label
    seg = _labels_on(out / "labelsTr" / by_series[1], study["grid1"])
    np.testing.assert_array_equal(seg, study["truth"][1])

    from medai_lab.datasets.msd import check_cases, dataset_labels, find_cases

    cases = find_cases(out)
    check_cases(cases)  # ready for medai-lab train --data OUT
    assert len(cases) == 2 and dataset_labels(out) == {1: "lung", 2: "nodule"}


def test_cohort_writes_no_identifiers(study: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cohort"
    assert main(["cohort", str(study["root"]), str(out), "--task", "lung", "--quiet"]) == 0
    printed = capsys.readouterr()
    texts = [printed.out, printed.err]
    for path in out.rglob("*"):
        texts.append(path.relative_to(out).as_posix())
        if path.suffix in (".csv", ".json"):
            texts.append(path.read_text())
    joined = "\n".join(texts)
    for word in ("DOE", "JANE", "MRN-4711", "4711"):
        assert word not in joined


def test_cohort_de_identified_keeps_labels(study: dict, tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    code = main(
        ["cohort", str(study["root"]), str(out), "--task", "lung", "--deid", "--quiet",
         "--key-file", str(tmp_path / "k.key")]
    )  # fmt: skip
    assert code == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 2 and "deid_profile" in info
    first = next((out / "dicom").rglob("*.dcm"))
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    assert "DOE" not in str(ds.PatientName) and ds.PatientIdentityRemoved == "YES"
    label_files = sorted((out / "labelsTr").iterdir())
    counts = [np.count_nonzero(nib.load(p).get_fdata() == 1) for p in label_files]
    assert all(c > 1000 for c in counts)  # ROI names survived (clean descriptors), lungs mapped


def test_convert_writes_the_label_map(study: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ct.nii.gz"
    code = main(["convert", str(study["root"]), str(out), "--series", "1"])
    assert code == 0
    labels_path = tmp_path / "ct_labels.nii.gz"
    assert labels_path.is_file() and "ct_labels.nii.gz" in capsys.readouterr().out
    names = json.loads((tmp_path / "ct_labels.json").read_text())["labels"]
    assert sorted(names.values()) == ["lung", "nodule"]
    arr = nib.load(labels_path).get_fdata()
    by_name = {n: int(v) for v, n in names.items()}
    truth = study["truth"][1]
    assert np.array_equal(arr == by_name["lung"], truth == 1)


def test_mismatched_frame_of_reference_is_skipped_with_a_reason(
    study: dict, tmp_path: Path
) -> None:
    from medai_lab.datasets.cohort import build_cohort

    src = tmp_path / "src"
    shutil.copytree(study["series"][0], src / "a")
    rt = pydicom.dcmread(src / "a" / "rtss.dcm")
    # Point the RTSTRUCT at another frame of reference than its images.
    rt.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4.5"
    for roi in rt.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.3.4.5"
    rt.save_as(src / "a" / "rtss.dcm")
    shutil.copytree(study["series"][1], src / "b")
    report = build_cohort(src, tmp_path / "out", task="lung", labels={1: "lung", 2: "nodule"},
                          progress=False)  # fmt: skip
    assert report.training == 1
    notes = [r["note"] for r in report.rows if r["status"] != "written"]
    assert len(notes) == 1 and "frame of reference" in notes[0].lower(), notes


def test_no_labelled_case_is_one_error_and_no_output(study: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cohort"
    code = main(["cohort", str(study["series"][2]), str(out), "--task", "lung", "--quiet"])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no labelled case" in err[0]

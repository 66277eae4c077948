"""DICOM SEG against dcmqi (the reference TCIA/IDC use), dciodvfy (IOD checks) and real CT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from seg_helpers import (
    KINDS,
    LABELS,
    dciodvfy_errors,
    dcmqi_meta,
    dcmqi_read,
    dcmqi_write,
    make_series,
    one_line,
    paste_canonical,
    phantom_labels,
    restamp,
)
from testsupport import canonical

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, load_series, save_nifti
from medai_lab.io.seg import read_seg, seg_references, write_seg


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict[str, tuple[Path, Volume]]:
    root = tmp_path_factory.mktemp("series")
    return {kind: make_series(root / kind, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def basel(shared_data, tmp_path_factory) -> tuple[Path, Volume, Volume, Path]:
    """The real JPEG 2000 CT with UIDs assigned, its Volume, spleen+liver labels, and the
    same series with SOPClassUID also in the datasets (for dcmqi; same UIDs)."""
    src = shared_data / "ct_series_basel"
    root = tmp_path_factory.mktemp("basel")
    copy = restamp(src / "dicom", root / "ct", seed="basel")
    assert not pydicom.dcmread(next(copy.iterdir())).get("SOPClassUID")  # the real trap kept
    full = restamp(src / "dicom", root / "ct_full", seed="basel", fill_sop_class=True)
    seg = load_nifti(src / "segmentation.nii.gz")
    keep = np.where(np.isin(seg.array, (1, 5)), seg.array, 0).astype(np.uint8)
    return copy, load_series(copy), Volume(keep, seg.affine), full


# --- dcmqi and dciodvfy -------------------------------------------------------------------


@pytest.mark.needs("dcmqi")
@pytest.mark.parametrize("kind", KINDS)
def test_dcmqi_reads_ours(series, kind, tmp_path):
    folder, ref = series[kind]
    lab = phantom_labels(ref.shape)
    out = write_seg(lab, folder, tmp_path / "seg.dcm", labels=LABELS)
    found = dcmqi_read(out, tmp_path / "dcmqi")
    ref_lab, ref_aff = canonical(Volume(lab, ref.affine))
    assert sorted(found) == sorted(LABELS.values())
    for value, name in LABELS.items():
        mask, affine = found[name]
        got = paste_canonical(mask, affine, ref_lab.shape, ref_aff)
        np.testing.assert_array_equal(got, ref_lab == value)


@pytest.mark.needs("dcmqi")
@pytest.mark.parametrize(
    ("kind", "seg_type"), [(k, "binary") for k in KINDS] + [("axial", "labelmap")]
)
def test_ours_reads_dcmqi(series, kind, seg_type, tmp_path):
    folder, ref = series[kind]
    lab = phantom_labels(ref.shape)
    # Segment numbers that are not our label values: dcmqi's segment 1 is the tumour.
    theirs = np.array([0, 2, 3, 1], np.uint8)[lab]
    nifti = save_nifti(Volume(theirs, ref.affine), tmp_path / "labels.nii.gz")
    meta = dcmqi_meta({1: "tumour", 2: "liver", 3: "spleen"})
    seg = dcmqi_write(nifti, folder, tmp_path / "dcmqi.dcm", meta, seg_type)
    assert seg_references(seg)["segment_labels"] == ["tumour", "liver", "spleen"]
    result = read_seg(seg, ref, labels=LABELS)
    np.testing.assert_array_equal(result.volume.array, lab)


@pytest.mark.needs("dcmqi")
def test_segments_matched_by_code_when_their_label_says_nothing(series, tmp_path):
    folder, ref = series["axial"]
    lab = phantom_labels(ref.shape)
    nifti = save_nifti(Volume(lab, ref.affine), tmp_path / "labels.nii.gz")
    meta = dcmqi_meta(LABELS)
    for n, item in enumerate(meta["segmentAttributes"][0], start=1):
        item["SegmentLabel"] = f"Segment_{n}"  # what many tools write; the codes still say it
    seg = dcmqi_write(nifti, folder, tmp_path / "coded.dcm", meta)
    result = read_seg(seg, ref, labels={1: "liver", 2: "spleen", 3: "tumour"})
    np.testing.assert_array_equal(result.volume.array, lab)
    assert result.sources == {1: ["Segment_1"], 2: ["Segment_2"], 3: ["Segment_3"]}
    with pytest.raises(MedaiError) as err:
        read_seg(seg, ref, overlap="biggest")
    one_line(err)


@pytest.mark.needs("dcmqi")
def test_overlapping_segments_follow_the_overlap_rule(series, tmp_path):
    """dcmqi writes segments from separate label files; they may overlap (a tumour in a liver)."""
    folder, ref = series["oblique"]
    liver = np.zeros(ref.shape, np.uint8)
    liver[4:30, 4:30, 2:10] = 1
    tumour = np.zeros(ref.shape, np.uint8)
    tumour[10:14, 10:14, 4:6] = 1  # wholly inside the liver
    files = [save_nifti(Volume(m, ref.affine), tmp_path / f"{n}.nii.gz")
             for n, m in (("liver", liver), ("tumour", tumour))]  # fmt: skip
    meta = dcmqi_meta({1: "liver"})
    meta["segmentAttributes"] += dcmqi_meta({1: "tumour"})["segmentAttributes"]
    seg = dcmqi_write(files, folder, tmp_path / "overlap.dcm", meta)
    small_first = {1: "tumour", 2: "liver"}
    later = read_seg(seg, ref, labels=small_first)  # the higher value (liver) wins
    np.testing.assert_array_equal(later.volume.array, 2 * liver)
    assert later.sources == {1: ["tumour"], 2: ["liver"]} and not later.empty  # hidden, not empty
    smaller = read_seg(seg, ref, labels=small_first, overlap="smaller")
    np.testing.assert_array_equal(smaller.volume.array, np.where(tumour == 1, 1, 2 * liver))
    tumour_last = read_seg(seg, ref, labels={1: "liver", 2: "tumour"})
    np.testing.assert_array_equal(tumour_last.volume.array, np.where(tumour == 1, 2, liver))
    with pytest.raises(MedaiError) as err:
        read_seg(seg, ref, labels=small_first, overlap="error")
    assert "overlap" in one_line(err)


@pytest.mark.needs("dciodvfy")
def test_dciodvfy_finds_no_error_in_our_segs(series, tmp_path):
    folder, ref = series["oblique"]
    lab = phantom_labels(ref.shape)
    binary = write_seg(lab, folder, tmp_path / "b.dcm", labels=LABELS)
    frac = write_seg(lab, folder, tmp_path / "f.dcm", labels=LABELS, fractional=True)
    for path in (binary, frac):
        assert dciodvfy_errors(path) == []
    # The check can fail: a SEG without its segment descriptions is an IOD error.
    broken = pydicom.dcmread(binary)
    del broken.SegmentSequence
    broken.save_as(tmp_path / "broken.dcm")
    assert dciodvfy_errors(tmp_path / "broken.dcm")


# --- real data ----------------------------------------------------------------------------


def test_real_ct_without_uids_is_refused(shared_data, tmp_path):
    src = shared_data / "ct_series_basel"
    seg = load_nifti(src / "segmentation.nii.gz")
    with pytest.raises(MedaiError) as err:
        write_seg(seg, src / "dicom", tmp_path / "seg.dcm", labels={1: "spleen"})
    assert "UID" in one_line(err)
    assert not list(tmp_path.iterdir())


@pytest.mark.needs("dcmqi")
@pytest.mark.needs("dciodvfy")
def test_real_ct_round_trip_and_dcmqi(basel, tmp_path):
    folder, ref, labels, full = basel
    names = {1: "spleen", 5: "liver"}
    want, want_aff = canonical(labels)
    assert (want == 1).sum() > 1000 and (want == 5).sum() > 1000
    out = write_seg(labels, folder, tmp_path / "seg.dcm", labels=names)  # LAS prediction, LPS CT
    assert dciodvfy_errors(out) == []
    ours, ours_aff = canonical(read_seg(out, ref, labels=names).volume)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_allclose(ours_aff, want_aff, atol=1e-3)
    found = dcmqi_read(out, tmp_path / "dcmqi")
    for value, name in names.items():
        np.testing.assert_array_equal(
            paste_canonical(*found[name], want.shape, want_aff), want == value
        )
    # And the other way: dcmqi's SEG of the same labels, read by us.
    nifti = save_nifti(
        Volume(np.where(labels.array == 5, 2, labels.array).astype(np.uint8), labels.affine),
        tmp_path / "two.nii.gz",
    )
    seg = dcmqi_write(nifti, full, tmp_path / "dcmqi.dcm", dcmqi_meta({1: "spleen", 2: "liver"}))
    theirs, _ = canonical(read_seg(seg, ref, labels=names).volume)
    np.testing.assert_array_equal(theirs, want)


def test_real_ct_seg_carries_exactly_the_source_patient_and_study(basel, tmp_path):
    folder, _, labels, _ = basel
    out = write_seg(labels, folder, tmp_path / "seg.dcm", labels={1: "spleen", 5: "liver"})
    seg = pydicom.dcmread(out, stop_before_pixels=True)
    src = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    patient_study = [
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
        "PatientWeight", "PatientSize", "IssuerOfPatientID", "PatientIdentityRemoved",
        "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
        "ReferringPhysicianName", "StudyDescription",
    ]  # fmt: skip
    for kw in patient_study:
        assert str(seg.get(kw, "") or "") == str(src.get(kw, "") or ""), kw
    assert seg.PatientWeight == src.PatientWeight  # the real file's leftover, kept as it is
    # Equipment and institution of the scanner are not patient/study data: not copied.
    for kw in ("InstitutionAddress", "StationName", "RequestingPhysician"):
        assert src.get(kw) and kw not in seg, kw
    assert seg.DeviceSerialNumber != src.DeviceSerialNumber

"""DICOM SEG read/write against dcmqi (the reference TCIA/IDC use) and dciodvfy (IOD checks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from seg_helpers import (
    dciodvfy_errors,
    dcmqi_meta,
    dcmqi_read,
    dcmqi_write,
    make_series,
    paste_canonical,
    phantom_labels,
    restamp,
    shuffle_seg,
)
from testsupport import canonical

from medai_lab.cli import main
from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, load_series, save_nifti
from medai_lab.io.seg import GENERIC_CODE, Algorithm, read_seg, seg_references, write_seg
from medai_lab.io.structures import structures

LABELS = {1: "liver", 2: "spleen", 3: "tumour"}
KINDS = ["axial", "reversed", "oblique"]
UID_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


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


# --- our writer, our reader ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_is_identical(series, kind, tmp_path):
    folder, ref = series[kind]
    lab = phantom_labels(ref.shape)
    out = write_seg(Volume(lab, ref.affine), folder, tmp_path / "seg.dcm", labels=LABELS)
    result = read_seg(out, ref, labels=LABELS)
    np.testing.assert_array_equal(result.volume.array, lab)
    np.testing.assert_allclose(result.volume.affine, ref.affine)
    assert result.sources == {1: ["liver"], 2: ["spleen"], 3: ["tumour"]}
    assert not result.unmapped and not result.empty
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left behind


@pytest.mark.parametrize("kind", KINDS)
def test_sparse_segs_one_slice_gaps_and_edges(series, kind, tmp_path):
    """SEGs hold only the frames with labels: one slice, gaps between slices, the last voxel."""
    folder, ref = series[kind]
    cases = {
        "one slice": [(np.s_[3:9, 4:8, 5], 1)],
        "gap": [(np.s_[3:9, 4:8, 0:2], 1), (np.s_[10:20, 10:20, 9:11], 2)],
        "corner voxel": [(np.s_[-1, -1, -1], 1)],
    }
    files = sorted(folder.iterdir())  # the reference as a file list this time
    for name, parts in cases.items():
        lab = np.zeros(ref.shape, np.uint8)
        for where, value in parts:
            lab[where] = value
        out = write_seg(lab, files, tmp_path / f"{name}.dcm", labels={1: "liver", 2: "spleen"})
        got = read_seg(out, ref, labels={1: "liver", 2: "spleen"}).volume.array
        np.testing.assert_array_equal(got, lab, err_msg=name)


def test_prediction_in_another_axis_order_lands_on_the_same_voxels(series, tmp_path):
    """A prediction in another axis order (RAS, or anything), even as floats: same voxels."""
    import nibabel.orientations as ornt

    for kind, codes in (("axial", ("R", "A", "S")), ("oblique", ("I", "L", "A"))):
        folder, ref = series[kind]
        lab = phantom_labels(ref.shape)
        turn = ornt.ornt_transform(ornt.io_orientation(ref.affine), ornt.axcodes2ornt(codes))
        moved = Volume(
            ornt.apply_orientation(lab, turn).astype(np.float32),  # as get_fdata() gives it
            ref.affine @ ornt.inv_ornt_aff(turn, lab.shape),
        )
        assert moved.orientation == "".join(codes) != ref.orientation
        out = write_seg(moved, folder, tmp_path / f"{kind}.dcm", labels=LABELS)
        np.testing.assert_array_equal(read_seg(out, ref, labels=LABELS).volume.array, lab)


def test_frames_and_segments_in_any_order(series, tmp_path):
    folder, ref = series["axial"]
    lab = phantom_labels(ref.shape)
    ours = write_seg(lab, folder, tmp_path / "seg.dcm", labels=LABELS)
    shuffled = shuffle_seg(ours, tmp_path / "shuffled.dcm")
    order = [int(s.SegmentNumber) for s in pydicom.dcmread(shuffled).SegmentSequence]
    assert order != sorted(order)
    np.testing.assert_array_equal(read_seg(shuffled, ref, labels=LABELS).volume.array, lab)


def test_labels_by_name_synonym_and_default_numbering(series, tmp_path):
    folder, ref = series["axial"]
    lab = phantom_labels(ref.shape)
    out = write_seg(lab, folder, tmp_path / "seg.dcm", labels={1: "hepar", 2: "lien", 3: "GTV"})
    task = read_seg(out, ref, labels={1: "liver", 2: "tumour", 7: "heart"})
    assert task.labels == {1: "liver", 2: "tumour", 7: "heart"}
    assert task.sources == {1: ["hepar"], 2: ["GTV"]} and task.unmapped == ["lien"]
    expected = np.where(lab == 3, 2, np.where(lab == 1, 1, 0))
    np.testing.assert_array_equal(task.volume.array, expected)
    plain = read_seg(out, ref)  # no task labels: segment labels, numbered in segment order
    assert plain.labels == {1: "hepar", 2: "lien", 3: "GTV"}
    np.testing.assert_array_equal(plain.volume.array, lab)


def test_segment_codes_and_algorithm_identification(series, tmp_path):
    folder, ref = series["axial"]
    lab = phantom_labels(ref.shape)
    algo = Algorithm("liver-net", "2.1", run_id="0123456789abcdef0123456789abcdef")
    out = write_seg(
        lab, folder, tmp_path / "s.dcm", labels={1: "liver", 2: "blob", 3: "tumour"}, algorithm=algo
    )
    ds = pydicom.dcmread(out)
    by_label = {s.SegmentLabel: s for s in ds.SegmentSequence}
    for name in ("liver", "tumour"):
        want = structures()[name]
        item = by_label[name]
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == want.code.value
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == want.category.value
    blob = by_label["blob"].SegmentedPropertyTypeCodeSequence[0]
    assert (blob.CodingSchemeDesignator, blob.CodeValue) == (
        GENERIC_CODE.scheme,
        GENERIC_CODE.value,
    )
    for item in ds.SegmentSequence:
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        ident = item.SegmentationAlgorithmIdentificationSequence[0]
        assert (ident.AlgorithmName, ident.AlgorithmVersion) == ("liver-net", "2.1")
        assert algo.run_id in ident.AlgorithmParameters and algo.run_id in item.SegmentDescription
    assert ds.SeriesDescription == "MedAI Lab segmentation"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ref.meta["series_uid"]
    assert ds.FrameOfReferenceUID == ref.meta["frame_of_reference_uid"]


def test_seg_references_reads_the_header(series, tmp_path):
    folder, ref = series["reversed"]
    out = write_seg(phantom_labels(ref.shape), folder, tmp_path / "seg.dcm", labels=LABELS)
    refs = seg_references(out)
    assert refs == {
        "frame_of_reference_uid": ref.meta["frame_of_reference_uid"],
        "series_uids": [ref.meta["series_uid"]],
        "study_uid": ref.meta["study_uid"],
        "segment_labels": ["liver", "spleen", "tumour"],
    }


def test_fractional_seg_is_thresholded(series, tmp_path):
    folder, ref = series["oblique"]
    rng = np.random.default_rng(3)
    # Probabilities on the 1/255 grid a fractional SEG stores, so the threshold is exact.
    prob = rng.integers(0, 256, size=(*ref.shape, 2)) / 255.0
    out = write_seg(
        prob, folder, tmp_path / "frac.dcm", labels={1: "liver", 2: "tumour"}, fractional=True
    )
    assert pydicom.dcmread(out, stop_before_pixels=True).SegmentationType == "FRACTIONAL"
    for threshold in (0.5, 0.8):
        got = read_seg(out, ref, threshold=threshold, overlap="later").volume.array
        want = np.zeros(ref.shape, np.uint8)
        want[prob[..., 0] >= threshold] = 1
        want[prob[..., 1] >= threshold] = 2
        np.testing.assert_array_equal(got, want)
    labels = phantom_labels(ref.shape)  # a label map stored as FRACTIONAL reads back the same
    frac = write_seg(labels, folder, tmp_path / "f2.dcm", labels=LABELS, fractional=True)
    np.testing.assert_array_equal(read_seg(frac, ref).volume.array, labels)


# --- refusals -----------------------------------------------------------------------------


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and not UID_LIKE.search(text), text
    return text


def test_seg_of_another_series_or_frame_of_reference_is_refused(series, tmp_path):
    folder, ref = series["axial"]
    out = write_seg(phantom_labels(ref.shape), folder, tmp_path / "seg.dcm", labels=LABELS)
    # Same frame of reference, other series (e.g. a second reconstruction of the scan).
    sibling = load_series(restamp(folder, tmp_path / "sibling", seed="sibling"))
    with pytest.raises(MedaiError) as err:
        read_seg(out, sibling)
    assert "another series" in one_line(err)
    other, _ = make_series(tmp_path / "other", "axial", seed="other")
    with pytest.raises(MedaiError) as err:
        read_seg(out, load_series(other))
    assert "frame of reference" in one_line(err)
    with pytest.raises(MedaiError) as err:
        read_seg(tmp_path / "missing.dcm", ref)
    one_line(err)
    with pytest.raises(MedaiError) as err:
        read_seg(next(folder.iterdir()), ref)  # a CT image, not a SEG
    assert "not a DICOM SEG" in one_line(err)


def test_write_refuses_a_prediction_off_the_grid(series, tmp_path):
    folder, ref = series["oblique"]
    lab = phantom_labels(ref.shape)
    shifted = ref.affine.copy()
    shifted[:3, 3] += 0.5 * ref.affine[:3, 2]  # half a slice
    with pytest.raises(MedaiError) as err:
        write_seg(Volume(lab, shifted), folder, tmp_path / "a.dcm", labels=LABELS)
    assert "not on the reference grid" in one_line(err)
    with pytest.raises(MedaiError) as err:
        write_seg(lab[:, :, 1:], folder, tmp_path / "b.dcm", labels=LABELS)
    one_line(err)
    with pytest.raises(MedaiError) as err:
        write_seg(lab, folder, tmp_path / "c.dcm", labels={1: "liver"})
    assert "no name" in one_line(err)
    with pytest.raises(MedaiError) as err:
        write_seg(lab * 0.5, folder, tmp_path / "d.dcm", labels=LABELS)  # probabilities
    assert "non-integer" in one_line(err)
    with pytest.raises(MedaiError) as err:
        write_seg(np.zeros(ref.shape, np.int16), folder, tmp_path / "e.dcm", labels=LABELS)
    assert "no labelled voxel" in one_line(err)
    assert not list(tmp_path.iterdir())  # nothing written, not even a partial file


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


# --- the command --------------------------------------------------------------------------


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as code:
        main(["seg", "--help"])
    assert code.value.code == 0
    text = capsys.readouterr().out
    for option in ("--reference", "--out", "--labels", "--read", "--run-id", "--overwrite"):
        assert option in text


def test_cli_write_then_read(series, tmp_path, capsys):
    folder, ref = series["reversed"]
    lab = phantom_labels(ref.shape)
    msd = tmp_path / "msd"
    (msd / "labelsTr").mkdir(parents=True)
    (msd / "dataset.json").write_text(json.dumps({"labels": {"0": "background", **LABELS}}))
    nifti = save_nifti(Volume(lab, ref.affine), msd / "labelsTr" / "case.nii.gz")
    seg = tmp_path / "case_seg.dcm"
    argv = [
        "seg",
        str(nifti),
        "--reference",
        str(folder),
        "--out",
        str(seg),
        "--algorithm-name",
        "liver-net",
        "--algorithm-version",
        "3",
        "--run-id",
        "r1",
    ]
    assert main(argv) == 0
    assert seg_references(seg)["segment_labels"] == ["liver", "spleen", "tumour"]
    assert main(argv) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--labels", "1=hepar", "2=lien", "3=gtv", "--overwrite"]) == 0
    assert seg_references(seg)["segment_labels"] == ["hepar", "lien", "gtv"]
    back = tmp_path / "back.nii.gz"
    assert (
        main(
            [
                "seg",
                "--read",
                str(seg),
                "--reference",
                str(folder),
                "--out",
                str(back),
                "--labels",
                "1=liver",
                "2=spleen",
                "3=tumour",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(load_nifti(back).array, lab)


def test_cli_errors_are_one_line(series, tmp_path, capsys):
    folder, ref = series["axial"]
    nifti = save_nifti(Volume(phantom_labels(ref.shape), ref.affine), tmp_path / "l.nii.gz")
    cases = [
        ["seg", str(nifti), "--reference", str(tmp_path / "no"), "--out", str(tmp_path / "a.dcm")],
        ["seg", "--reference", str(folder), "--out", str(tmp_path / "b.dcm")],
        ["seg", str(nifti), "--reference", str(folder), "--out", str(tmp_path / "c.dcm"),
         "--labels", "one=liver"],
    ]  # fmt: skip
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("medai-lab: error:") and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.nii.gz"]

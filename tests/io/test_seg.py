"""DICOM SEG read/write: our writer and reader on phantoms of any orientation, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from seg_helpers import (
    KINDS,
    LABELS,
    make_series,
    one_line,
    phantom_labels,
    restamp,
    shuffle_seg,
)

from medai_lab.cli import main
from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, load_series, save_nifti
from medai_lab.io.seg import GENERIC_CODE, Algorithm, read_seg, seg_references, write_seg
from medai_lab.io.structures import structures


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict[str, tuple[Path, Volume]]:
    root = tmp_path_factory.mktemp("series")
    return {kind: make_series(root / kind, kind) for kind in KINDS}


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
    # Several segments with one label (lesions) fill one label value.
    same = write_seg(lab, folder, tmp_path / "s.dcm", labels={1: "Lesion", 2: "liver", 3: "lesion"})
    assert seg_references(same)["segment_labels"] == ["Lesion", "liver", "lesion"]
    task = read_seg(same, ref, labels={1: "liver", 2: "tumour"})
    assert task.sources == {1: ["liver"], 2: ["Lesion", "lesion"]}
    np.testing.assert_array_equal(task.volume.array, np.array([0, 2, 1, 2], np.uint8)[lab])
    plain = read_seg(same, ref)
    assert plain.labels == {1: "Lesion", 2: "liver"}
    np.testing.assert_array_equal(plain.volume.array, np.array([0, 1, 2, 1], np.uint8)[lab])


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


def test_de_identified_source_is_carried_as_it_is(tmp_path):
    """Pseudonyms, the de-identification markers and trial IDs of the source, nothing else."""
    folder, ref = make_series(tmp_path / "ct", "axial", seed="deid")
    marks = {
        "PatientName": "PSEUDO^0001",
        "PatientID": "P-0001",
        "PatientIdentityRemoved": "YES",
        "DeidentificationMethod": "PS3.15 basic profile",
        "ClinicalTrialSubjectID": "S01",
    }
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        for kw, value in marks.items():
            setattr(ds, kw, value)
        ds.save_as(f)
    out = write_seg(phantom_labels(ref.shape), folder, tmp_path / "seg.dcm", labels=LABELS)
    seg = pydicom.dcmread(out, stop_before_pixels=True)
    assert {kw: str(seg.get(kw)) for kw in marks} == marks
    src = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert (seg.StudyInstanceUID, seg.StudyDate) == (src.StudyInstanceUID, src.StudyDate)


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

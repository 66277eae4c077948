"""RTSTRUCT -> label map, against plastimatch (the reference) on real and phantom CTs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from rtstruct_helpers import (
    circle,
    dice,
    make_rtstruct,
    masks_to_rtstruct,
    plastimatch_rasterise,
    resample_same_grid,
)

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, load_series, write_dicom_series
from medai_lab.io.labelmap import resolve_overlaps
from medai_lab.io.rtstruct import read_rtstruct, rtstruct_references

BASEL_ROIS = ["liver", "spleen", "stomach", "aorta", "spinal_cord", "pancreas", "rib_left_7"]


def rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    i, j = (a for a in range(3) if a != axis)
    m = np.eye(3)
    m[i, i] = m[j, j] = np.cos(t)
    m[i, j], m[j, i] = -np.sin(t), np.sin(t)
    return m


def phantom_ct(folder: Path, affine: np.ndarray, shape=(64, 56, 24), **kw) -> Volume:
    blank = Volume(np.zeros(shape, np.int16), affine)
    write_dicom_series(blank, folder, uid_seed=str(folder), **kw)
    return load_series(folder)


def blobs(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Two overlapping ellipsoids and a ring (a hole), voxel masks with known geometry."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ni, nj, nk = shape
    big = ((i - ni * 0.45) / (ni * 0.3)) ** 2 + ((j - nj * 0.5) / (nj * 0.3)) ** 2 + (
        (k - nk * 0.5) / (nk * 0.35)
    ) ** 2 < 1
    small = np.hypot(np.hypot((i - ni * 0.6) / 5.5, (j - nj * 0.5) / 4.5), (k - nk * 0.5) / 4) < 1
    r = np.hypot(i - ni * 0.3, j - nj * 0.3)
    ring = (r < 9) & (r > 4) & (k > 2) & (k < nk - 3)
    return {"Organ": big, "Lesion": small, "Ring": ring}


@pytest.fixture(scope="module")
def basel(shared_data, tmp_path_factory) -> tuple[Volume, Path, dict[str, np.ndarray]]:
    """The real Basel CT rewritten with UIDs (its own are empty) + its organ masks."""
    src = shared_data / "ct_series_basel"
    ct_dir = tmp_path_factory.mktemp("basel") / "ct"
    write_dicom_series(load_series(src / "dicom"), ct_dir, uid_seed="basel-test")
    grid = load_series(ct_dir)
    seg = load_nifti(src / "segmentation.nii.gz")
    seg_arr = resample_same_grid(np.asarray(seg.array), seg.affine, grid)
    names = {v: int(k) for k, v in json.loads((src / "labels.json").read_text()).items()}
    return grid, ct_dir, {n: seg_arr == names[n] for n in BASEL_ROIS}


@pytest.fixture(scope="module")
def basel_rtss(basel, plastimatch, tmp_path_factory) -> Path:
    grid, ct_dir, masks = basel
    return masks_to_rtstruct(plastimatch, masks, grid, ct_dir, tmp_path_factory.mktemp("bw"))


@pytest.fixture
def phantom(tmp_path) -> Volume:
    affine = np.diag([-0.9, -0.8, 2.5, 1.0])
    affine[:3, 3] = [25.0, 30.0, -40.0]
    return phantom_ct(tmp_path / "ct", affine)


# --- plastimatch agreement --------------------------------------------------------------------


@pytest.mark.needs("plastimatch")
def test_real_ct_matches_plastimatch_per_roi(basel, basel_rtss, plastimatch, tmp_path):
    grid, ct_dir, masks = basel
    ref = plastimatch_rasterise(plastimatch, basel_rtss, ct_dir, grid, tmp_path, xor=True)
    lm = read_rtstruct(basel_rtss, grid)
    assert set(lm.labels.values()) == set(BASEL_ROIS) == set(ref)
    assert lm.volume.shape == grid.shape and np.allclose(lm.volume.affine, grid.affine)
    assert lm.volume.array.dtype == np.uint8 and not lm.empty and not lm.unmapped
    # plastimatch keeps overlapping structures apart; combine them by the same documented rule
    expected = resolve_overlaps([(v, ref[n]) for v, n in sorted(lm.labels.items())], "later")
    for value, name in lm.labels.items():
        assert dice(lm.volume.array == value, expected == value) >= 0.99, name
        # and the structure is where the model's label map put it (contour round trip)
        assert dice(lm.volume.array == value, masks[name] & (expected == value)) >= 0.9, name


@pytest.mark.needs("plastimatch")
def test_real_ct_task_labels_and_unmapped(basel, basel_rtss):
    grid, _, masks = basel
    lm = read_rtstruct(basel_rtss, grid, labels={1: "liver", 2: "spleen"})
    assert lm.labels == {1: "liver", 2: "spleen"}
    assert lm.sources == {1: ["liver"], 2: ["spleen"]}
    assert sorted(lm.unmapped) == sorted(set(BASEL_ROIS) - {"liver", "spleen"})
    assert dice(lm.volume.array == 1, masks["liver"]) > 0.95
    assert "liver" in lm.describe() and "unmapped" in lm.describe()


@pytest.mark.needs("plastimatch")
@pytest.mark.parametrize(
    "case",
    ["axial", "reversed_slices", "reversed_instances", "oblique", "flipped_rows"],
)
def test_phantom_geometries_match_plastimatch(case, plastimatch, tmp_path):
    affine = np.diag([-0.9, -0.8, 2.5, 1.0])
    affine[:3, 3] = [25.0, 30.0, -40.0]
    kw = {}
    if case == "reversed_slices":  # k runs from head to feet
        affine[:3, 2] *= -1
    elif case == "reversed_instances":
        kw["reverse_instance_numbers"] = True
    elif case == "oblique":
        affine[:3, :3] = rotation(0, 20) @ rotation(2, 10) @ affine[:3, :3]
    elif case == "flipped_rows":  # image rows run feet-ward... columns run posterior to anterior
        affine[:3, 1] *= -1
    grid = phantom_ct(tmp_path / "ct", affine, **kw)
    masks = {n: resample_same_grid(m, affine, grid) for n, m in blobs(grid.shape).items()}
    rtss = masks_to_rtstruct(plastimatch, masks, grid, tmp_path / "ct", tmp_path / "w")
    # plastimatch writes holes as separate contours; only --xor-contours reads them back as holes
    ref = plastimatch_rasterise(plastimatch, rtss, tmp_path / "ct", grid, tmp_path, xor=True)
    lm = read_rtstruct(rtss, grid, overlap="smaller")
    expected = resolve_overlaps([(v, ref[n]) for v, n in sorted(lm.labels.items())], "smaller")
    for value, name in lm.labels.items():
        assert dice(lm.volume.array == value, expected == value) >= 0.99, name
        assert dice(ref[name], masks[name]) >= 0.95, name  # the phantom itself survived
    assert sorted(lm.labels.values()) == ["Lesion", "Organ", "Ring"]


@pytest.mark.needs("plastimatch")
def test_holes_and_nested_islands_are_even_odd(phantom, plastimatch, tmp_path):
    """Outer contour, a hole and an island in the hole as three contours on each slice."""
    ci, cj = 30.3, 27.7
    contours = []
    for k in range(5, 15):
        contours += [("CLOSED_PLANAR", circle(ci, cj, r, k)) for r in (20.0, 12.5, 5.2)]
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, {"Target": contours})
    ref = plastimatch_rasterise(
        plastimatch, rtss, tmp_path / "ct", phantom, tmp_path / "x", xor=True
    )["Target"]
    ours = read_rtstruct(rtss, phantom).volume.array == 1
    assert dice(ours, ref) >= 0.99
    i, j = np.meshgrid(*(np.arange(n) for n in phantom.shape[:2]), indexing="ij")
    r = np.hypot(i - ci, j - cj)
    for k in range(5, 15):  # away from the boundaries the rings are unambiguous
        s = ours[:, :, k]
        assert s[r < 4.5].all() and not s[(r > 6) & (r < 12)].any()
        assert s[(r > 13.5) & (r < 19)].all() and not s[r > 21].any()
    assert not ours[:, :, :5].any() and not ours[:, :, 15:].any()


# --- real data shipped with pydicom ----------------------------------------------------------


@pytest.mark.needs("plastimatch")
def test_pydicom_rtstruct_box_and_isocentre_points(plastimatch, tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("rtstruct.dcm")
    refs = rtstruct_references(path)
    assert refs["roi_names"] == ["patient", "Isocenter 1", "Isocenter 2"]
    # a CT grid around the box (x -200..200, y -150..150, z -200..-180) reaching z = 0
    affine = np.diag([-5.0, -5.0, 10.0, 1.0])
    affine[:3, 3] = [220.0, 170.0, -200.0]
    ct = tmp_path / "ct"
    write_dicom_series(Volume(np.zeros((89, 69, 21), np.int16), affine), ct, uid_seed="p")
    for f in ct.iterdir():  # the structure set's frame of reference, as a real CT would carry
        ds = pydicom.dcmread(f)
        ds.FrameOfReferenceUID = refs["frame_of_reference_uid"]
        ds.save_as(f)
    grid = load_series(ct)
    lm = read_rtstruct(path, grid, overlap="later")
    assert lm.labels == {1: "patient", 2: "Isocenter 1", 3: "Isocenter 2"}
    ref = plastimatch_rasterise(plastimatch, Path(path), ct, grid, tmp_path / "x", xor=True)
    box = lm.volume.array == 1
    assert box.any() and dice(box, ref["patient"]) >= 0.99
    # both isocentres sit on one point: the nearest voxel, the later label keeps it
    ijk = np.rint(grid.world_to_voxel([0.0, 0.0, 0.0])).astype(int)
    assert lm.volume.array[tuple(ijk)] == 3 and (lm.volume.array == 3).sum() == 1
    assert any("POINT" in w for w in lm.warnings)
    assert any("took 1 voxels" in w for w in lm.warnings)


# --- names: synonyms, unmapped, duplicates ----------------------------------------------------


def test_synonyms_fill_task_labels_and_unknown_names_are_reported(phantom, tmp_path):
    rois = {
        "Lung_L": [("CLOSED_PLANAR", circle(15, 20, 6, 8))],
        "LUNG_RT": [("CLOSED_PLANAR", circle(45, 20, 6, 8))],
        "GTV_1": [("CLOSED_PLANAR", circle(45, 20, 2, 8))],
        "Couch": [("CLOSED_PLANAR", circle(30, 50, 3, 8))],
    }
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, rois)
    lm = read_rtstruct(rtss, phantom, labels={1: "lung", 2: "nodule"}, synonyms={"GTV_1": "nodule"})
    assert lm.sources == {1: ["Lung_L", "LUNG_RT"], 2: ["GTV_1"]}
    assert lm.unmapped == ["Couch"]
    lung, nodule = lm.volume.array == 1, lm.volume.array == 2
    assert lung[15, 20, 8] and lung[45 - 4, 20, 8] and nodule[45, 20, 8]  # nodule wins
    assert not lm.volume.array[30, 50, 8]  # the unmapped ROI is not drawn


def test_duplicate_roi_names_are_refused(phantom, tmp_path):
    rois = {"a": [("CLOSED_PLANAR", circle(15, 20, 6, 8))], "b": []}
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, rois, names=["Liver", "LIVER "])
    with pytest.raises(MedaiError, match="both named"):
        read_rtstruct(rtss, phantom)


# --- refused input ------------------------------------------------------------------------------


def test_other_frame_of_reference_is_refused(phantom, tmp_path):
    rtss = make_rtstruct(
        tmp_path / "rt.dcm",
        phantom,
        {"Liver": [("CLOSED_PLANAR", circle(15, 20, 6, 8))]},
        frame_uid="1.2.3.4.5",
    )
    with pytest.raises(MedaiError, match="frame of reference") as err:
        read_rtstruct(rtss, phantom)
    assert "\n" not in str(err.value) and "1.2.3.4.5" not in str(err.value)


def test_not_an_rtstruct_is_refused(phantom, tmp_path):
    ct_file = next((tmp_path / "ct").iterdir())
    with pytest.raises(MedaiError, match="not an RTSTRUCT"):
        read_rtstruct(ct_file, phantom)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"definitely not DICOM" * 10)
    with pytest.raises(MedaiError, match="not"):
        read_rtstruct(junk, phantom)
    with pytest.raises(MedaiError, match="not found"):
        read_rtstruct(tmp_path / "missing.dcm", phantom)


def test_damaged_contour_data_is_refused_but_the_header_still_reads(phantom, tmp_path):
    import pydicom

    rtss = make_rtstruct(
        tmp_path / "rt.dcm", phantom, {"Liver": [("CLOSED_PLANAR", circle(15, 20, 6, 8))]}
    )
    ds = pydicom.dcmread(rtss)
    ds.ROIContourSequence[0].ContourSequence[0].ContourData = ["1.0", "2.0"]
    ds.save_as(rtss)
    before = rtss.read_bytes()
    with pytest.raises(MedaiError, match="damaged"):
        read_rtstruct(rtss, phantom)
    assert rtstruct_references(rtss)["roi_names"] == ["Liver"]  # header-only: contours unread
    assert rtss.read_bytes() == before  # input untouched


# --- contours off the grid, empty ROIs, open and point contours -----------------------------


def test_outside_between_and_clipped_contours_are_reported(phantom, tmp_path):
    step = phantom.spacing[2]
    rois = {
        "Beyond": [("CLOSED_PLANAR", circle(30, 30, 5, phantom.shape[2] + 3))],
        "Between": [("CLOSED_PLANAR", circle(30, 30, 5, 7.4))],
        "Edge": [("CLOSED_PLANAR", circle(2, 30, 8, 10))],
        "NoContours": [],
    }
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, rois)
    lm = read_rtstruct(rtss, phantom, tolerance_mm=0.25 * step)
    assert lm.empty == ["Beyond", "Between", "NoContours"]
    joined = "\n".join(lm.warnings)
    assert "'Beyond': 1 contour(s) lie outside" in joined
    assert "'Between': 1 contour(s) lie between or across slices" in joined
    assert "'Edge': 1 contour(s) reach past the image edge" in joined
    edge = lm.volume.array == 3
    assert edge[0, 30, 10] and edge.sum() > 0
    # with the default tolerance (half a slice) the contour at k = 7.4 belongs to slice 7
    lm = read_rtstruct(rtss, phantom)
    assert (lm.volume.array[:, :, 7] == 2).any() and "Between" not in lm.empty


def test_contours_of_a_finer_slice_spacing_keep_the_nearest_plane(phantom, tmp_path):
    """Contours every 1/3 slice: XOR-ing all planes of a slice would punch holes."""
    planes = [("CLOSED_PLANAR", circle(30, 30, 8 - abs(k - 9), k)) for k in (8.67, 9.0, 9.33)]
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, {"Lesion": planes})
    lm = read_rtstruct(rtss, phantom)
    one = read_rtstruct(
        make_rtstruct(tmp_path / "one.dcm", phantom, {"Lesion": planes[1:2]}), phantom
    )
    assert np.array_equal(lm.volume.array, one.volume.array) and lm.volume.array[30, 30, 9]
    assert any("2 contour(s) lie in another plane" in w for w in lm.warnings)


def test_open_and_point_contours_mark_voxels(phantom, tmp_path):
    line = np.array([[10.0, 10.0, 6.0], [20.0, 10.0, 6.0], [20.0, 18.0, 6.0]])
    rois = {
        "Wire": [("OPEN_PLANAR", line)],
        "Marker": [("POINT", np.array([[33.2, 40.6, 11.3]]))],
    }
    lm = read_rtstruct(make_rtstruct(tmp_path / "rt.dcm", phantom, rois), phantom)
    wire = np.argwhere(lm.volume.array == 1)
    assert len(wire) == 11 + 8 and set(wire[:, 2]) == {6}
    assert np.argwhere(lm.volume.array == 2).tolist() == [[33, 41, 11]]
    assert any("POINT" in w for w in lm.warnings) and any("open" in w for w in lm.warnings)


@pytest.mark.parametrize("rule", ["later", "smaller", "error"])
def test_overlap_rules(phantom, tmp_path, rule):
    rois = {
        "Lesion": [("CLOSED_PLANAR", circle(30, 30, 4, k)) for k in (9, 10)],
        "Liver": [("CLOSED_PLANAR", circle(30, 30, 15, k)) for k in range(5, 15)],
    }
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, rois)
    if rule == "error":
        with pytest.raises(MedaiError, match="overlap"):
            read_rtstruct(rtss, phantom, overlap=rule)
        return
    lm = read_rtstruct(rtss, phantom, overlap=rule)
    assert lm.labels == {1: "Lesion", 2: "Liver"}
    # 'later': the higher value (Liver, 2) wins; 'smaller': the lesion stays visible
    assert lm.volume.array[30, 30, 9] == (2 if rule == "later" else 1)
    assert lm.volume.array[30, 30, 7] == 2
    assert any("took" in w for w in lm.warnings)


def test_references_are_header_only_and_complete(phantom, tmp_path):
    rtss = make_rtstruct(
        tmp_path / "rt.dcm", phantom, {"Heart": [("CLOSED_PLANAR", circle(30, 30, 5, 4))]}
    )
    refs = rtstruct_references(rtss)
    assert refs["frame_of_reference_uid"] == phantom.meta["frame_of_reference_uid"]
    assert refs["series_uids"] == [phantom.meta["series_uid"]]
    assert refs["study_uid"] and refs["roi_names"] == ["Heart"]


def test_input_volume_and_file_are_not_modified(phantom, tmp_path):
    rtss = make_rtstruct(
        tmp_path / "rt.dcm", phantom, {"Heart": [("CLOSED_PLANAR", circle(30, 30, 5, 4))]}
    )
    before_arr, before_aff = phantom.array.copy(), phantom.affine.copy()
    stat = os.stat(rtss)
    read_rtstruct(rtss, phantom)
    assert np.array_equal(phantom.array, before_arr) and np.array_equal(phantom.affine, before_aff)
    assert os.stat(rtss).st_mtime_ns == stat.st_mtime_ns


def test_chunked_fill_equals_one_pass(phantom, tmp_path, monkeypatch):
    """Large ROIs are filled a few slices at a time; the chunking must not change voxels."""
    from medai_lab.io import rtstruct_fill

    contours = [("CLOSED_PLANAR", circle(30, 28, 9 + k % 5, k)) for k in range(2, 22)]
    contours += [("CLOSED_PLANAR", circle(30, 28, 4, k)) for k in range(6, 12)]  # holes
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, {"Body": contours})
    whole = read_rtstruct(rtss, phantom).volume.array.copy()
    monkeypatch.setattr(rtstruct_fill, "_CHUNK_VOXELS", 1)  # one slice per chunk
    assert np.array_equal(read_rtstruct(rtss, phantom).volume.array, whole)
    assert whole[30, 28, 8] == 0 and whole[30, 28, 4] == 1


def test_other_series_warns_and_missing_frame_is_not_checked(phantom, tmp_path):
    rois = {"Liver": [("CLOSED_PLANAR", circle(20, 20, 6, 8))]}
    rtss = make_rtstruct(tmp_path / "rt.dcm", phantom, rois, series_uid="1.2.3.4")
    lm = read_rtstruct(rtss, phantom)
    assert (lm.volume.array == 1).any()
    assert any("another series" in w for w in lm.warnings)
    bare = Volume(phantom.array, phantom.affine)  # no meta: nothing to check against
    lm = read_rtstruct(rtss, bare)
    assert any("frame of reference not checked" in w for w in lm.warnings)
    assert np.array_equal(lm.volume.array, read_rtstruct(rtss, phantom).volume.array)

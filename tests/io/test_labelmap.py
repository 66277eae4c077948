"""LabelMap, ROI name -> label assignment and the overlap rule shared by RTSTRUCT and SEG."""

from __future__ import annotations

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume
from medai_lab.io.labelmap import LabelMap, assign_labels, resolve_overlaps


def test_without_task_labels_each_name_gets_its_own_value_in_order():
    mapping, unmapped = assign_labels(["Body", "Liver", "GTV"], None, None)
    assert mapping == {"Body": 1, "Liver": 2, "GTV": 3} and unmapped == []


def test_left_and_right_structures_fill_their_organ_and_unknown_names_are_unmapped():
    names = ["Lung_L", "LUNG_LT", "Lung_R", "lungs right", "Nodule", "Heart", "Couch"]
    mapping, unmapped = assign_labels(names, {1: "lung", 2: "nodule"}, None)
    assert mapping == {"Lung_L": 1, "LUNG_LT": 1, "Lung_R": 1, "lungs right": 1, "Nodule": 2}
    assert unmapped == ["Heart", "Couch"]


def test_a_structure_prefers_its_own_label_over_the_organ_it_is_part_of():
    mapping, _ = assign_labels(["Lung_L", "Lung_R"], {1: "lung", 2: "lung_left"}, None)
    assert mapping == {"Lung_L": 2, "Lung_R": 1}


def test_caller_synonyms_and_labels_outside_the_vocabulary():
    labels = {1: "ptv", 2: "couch", 3: "nodule"}
    synonyms = {"PTV_60Gy": "ptv", "GTV_1": "nodule"}
    mapping, unmapped = assign_labels(["PTV_60Gy", "Couch", "GTV_1", "CTV"], labels, synonyms)
    assert mapping == {"PTV_60Gy": 1, "Couch": 2, "GTV_1": 3} and unmapped == ["CTV"]


@pytest.mark.parametrize("labels", [None, {1: "liver"}])
def test_duplicate_names_are_refused_in_one_line(labels):
    with pytest.raises(MedaiError, match="both named") as err:
        assign_labels(["Liver", "Spleen", "LIVER "], labels, None)
    assert "\n" not in str(err.value)


def test_label_value_zero_is_refused():
    with pytest.raises(MedaiError, match="1 or more"):
        assign_labels(["Liver"], {0: "liver"}, None)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    big = np.zeros((6, 6, 2), bool)
    big[1:5, 1:5] = True
    small = np.zeros((6, 6, 2), bool)
    small[3:6, 3:6, 0] = True
    return big, small


def test_later_mask_wins_overlaps():
    big, small = _masks()
    out = resolve_overlaps([(1, small), (2, big)], "later")
    assert out[3, 3, 0] == 2 and out[5, 5, 0] == 1 and out[1, 1, 1] == 2
    out = resolve_overlaps([(2, big), (1, small)], "later")
    assert out[3, 3, 0] == 1
    assert out.dtype == np.uint8


def test_smaller_label_wins_overlaps_whatever_the_order():
    big, small = _masks()
    for masks in ([(1, small), (2, big)], [(2, big), (1, small)]):
        out = resolve_overlaps(masks, "smaller")
        assert out[3, 3, 0] == 1 and out[1, 1, 0] == 2


def test_error_rule_refuses_overlap_but_not_disjoint_masks():
    big, small = _masks()
    with pytest.raises(MedaiError, match="overlap"):
        resolve_overlaps([(1, small), (2, big)], "error")
    apart = np.zeros_like(big)
    apart[0, 0, 0] = True
    out = resolve_overlaps([(1, apart), (2, big)], "error")
    assert out[0, 0, 0] == 1 and out[2, 2, 0] == 2


def test_masks_of_one_value_unite_and_large_values_widen_the_type():
    big, small = _masks()
    out = resolve_overlaps([(300, big), (300, small)])
    assert out.dtype == np.uint16 and set(np.unique(out)) == {0, 300}
    assert np.array_equal(out == 300, big | small)


@pytest.mark.parametrize(
    ("masks", "rule", "match"),
    [
        ([], "later", "no masks"),
        ([(1, np.ones((2, 2), bool)), (2, np.ones((3, 2), bool))], "later", "shape"),
        ([(0, np.ones((2, 2), bool))], "later", "1 or more"),
        ([(1, np.ones((2, 2), bool))], "biggest", "overlap rule"),
    ],
)
def test_bad_overlap_input_is_refused(masks, rule, match):
    with pytest.raises(MedaiError, match=match):
        resolve_overlaps(masks, rule)


def test_describe_counts_voxels_and_lists_what_was_left_out():
    arr = np.zeros((4, 4, 2), np.uint8)
    arr[0, :2, 0] = 1
    lm = LabelMap(
        Volume(arr, np.eye(4)),
        {1: "lung", 2: "nodule"},
        {1: ["Lung_L", "Lung_R"], 2: []},
        unmapped=["Couch"],
        empty=["GTV"],
        warnings=["ROI 'GTV': 1 contour(s) lie outside the image and were skipped"],
    )
    assert lm.counts() == {1: 2, 2: 0}
    text = lm.describe()
    assert "4x4x2" in text and "lung <- Lung_L, Lung_R (2 voxels)" in text
    assert "unmapped: Couch" in text and "empty: GTV" in text and "outside" in text

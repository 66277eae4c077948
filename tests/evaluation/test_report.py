"""Folder evaluation on small NIfTI files, the CSV, bootstrap summaries and the CLI entry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from medai_lab.evaluation import (
    COLUMNS,
    EvaluationError,
    evaluate_dirs,
    evaluate_volumes,
    run_evaluate_cli,
    summarize,
)
from medai_lab.io.nifti import save_nifti
from medai_lab.io.volume import Volume

SPACING = (0.5, 1.0, 2.0)
AFFINE = np.diag([*SPACING, 1.0])
AFFINE[:3, 3] = (-10.0, 20.0, 5.0)


def label_map(shape=(24, 20, 16), boxes=()) -> np.ndarray:
    arr = np.zeros(shape, np.uint8)
    for value, start, size in boxes:
        arr[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] = value
    return arr


def write(folder, name, arr, affine=AFFINE):
    return save_nifti(Volume(arr, affine), folder / name)


LIVER = (1, (2, 2, 2), (10, 10, 10))
LIVER_SHIFTED = (1, (3, 2, 2), (10, 10, 10))  # 1 voxel = 0.5 mm along x: Dice 0.9, HD95 0.5
SPLEEN = (2, (14, 12, 4), (6, 6, 6))


@pytest.fixture
def dirs(tmp_path):
    """case_a: liver exact, spleen exact. case_b: liver shifted by one voxel, no spleen."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    write(truth, "case_a.nii.gz", label_map(boxes=[LIVER, SPLEEN]))
    write(pred, "case_a.nii.gz", label_map(boxes=[LIVER, SPLEEN]))
    write(truth, "case_b.nii", label_map(boxes=[LIVER]))
    write(pred, "case_b.nii.gz", label_map(boxes=[LIVER_SHIFTED]))  # .nii vs .nii.gz: same case
    return pred, truth


def test_evaluate_dirs_writes_csv(dirs, tmp_path):
    pred, truth = dirs
    out = tmp_path / "reports" / "report.csv"
    df = evaluate_dirs(pred, truth, {1: "liver", 2: "spleen"}, out_csv=out, progress=False)
    assert list(df.columns) == COLUMNS
    assert list(zip(df["case"], df["label"], strict=True)) == [
        ("case_a", 1),
        ("case_a", 2),
        ("case_b", 1),
        ("case_b", 2),
    ]
    rows = df.set_index(["case", "label_name"])
    assert rows.loc[("case_a", "liver"), "dice"] == 1.0
    assert rows.loc[("case_b", "liver"), "dice"] == pytest.approx(0.9)
    assert rows.loc[("case_b", "liver"), "hd95"] == pytest.approx(0.5)
    # Spleen absent from both in case_b: both-empty convention.
    assert rows.loc[("case_b", "spleen"), ["dice", "hd95", "nsd"]].tolist() == [1.0, 0.0, 1.0]
    assert rows.loc[("case_a", "spleen"), "truth_voxels"] == 216

    back = pd.read_csv(out)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.csv"]  # no temp files left


def test_labels_inferred_and_named(dirs):
    pred, truth = dirs
    df = evaluate_dirs(pred, truth, progress=False)
    assert sorted(set(df["label_name"])) == ["label_1", "label_2"]
    # case_b has no label 2 anywhere; it still gets a row (both empty).
    b2 = df[(df["case"] == "case_b") & (df["label"] == 2)].iloc[0]
    assert (b2["dice"], b2["hd95"], b2["nsd"], b2["truth_voxels"]) == (1.0, 0.0, 1.0, 0)
    given = evaluate_dirs(pred, truth, ["1", "2=spleen"], progress=False)
    assert given["label_name"].tolist() == ["label_1", "spleen", "label_1", "spleen"]
    pd.testing.assert_frame_equal(df.drop(columns="label_name"), given.drop(columns="label_name"))


def test_one_side_empty_gives_nan_hd95_in_table(tmp_path):
    pred, truth = tmp_path / "p", tmp_path / "t"
    write(truth, "x.nii.gz", label_map(boxes=[LIVER, SPLEEN]))
    write(pred, "x.nii.gz", label_map(boxes=[LIVER]))  # spleen missed
    df = evaluate_dirs(pred, truth, {1: "liver", 2: "spleen"}, progress=False)
    spleen = df[df["label"] == 2].iloc[0]
    assert spleen["dice"] == 0.0 and spleen["nsd"] == 0.0 and math.isnan(spleen["hd95"])


def test_missing_predictions_one_error(dirs):
    pred, truth = dirs
    write(truth, "case_c.nii.gz", label_map(boxes=[LIVER]))
    write(truth, "case_d.nii.gz", label_map(boxes=[LIVER]))
    with pytest.raises(EvaluationError, match=r"2 of 4 reference cases have no prediction") as e:
        evaluate_dirs(pred, truth, {1: "liver"}, progress=False)
    assert "case_c, case_d" in str(e.value)


def test_extra_predictions_ignored_with_warning(dirs):
    pred, truth = dirs
    write(pred, "stray.nii.gz", label_map(boxes=[LIVER]))
    (pred / ".case_a.nii.gz.1234.partial").write_bytes(b"")  # a writer's temp file: not a case
    with pytest.warns(UserWarning, match=r"ignoring 1 prediction\(s\) .*stray"):
        df = evaluate_dirs(pred, truth, {1: "liver"}, progress=False)
    assert sorted(set(df["case"])) == ["case_a", "case_b"]


def test_shape_mismatch_names_the_case(dirs):
    pred, truth = dirs
    write(pred, "case_b.nii.gz", label_map((24, 20, 15), boxes=[LIVER]))
    with pytest.raises(EvaluationError, match=r"^case_b: prediction shape \(24, 20, 15\)"):
        evaluate_dirs(pred, truth, {1: "liver"}, progress=False)


def test_affine_mismatch_names_the_case_and_tiny_differences_pass(dirs):
    pred, truth = dirs
    moved = AFFINE.copy()
    moved[0, 3] += 0.5  # half a millimetre off
    write(pred, "case_a.nii.gz", label_map(boxes=[LIVER]), moved)
    grids = r"^case_a: prediction and reference grids are 0.5 mm apart"
    with pytest.raises(EvaluationError, match=grids):
        evaluate_dirs(pred, truth, {1: "liver"}, progress=False)
    nudged = AFFINE.copy()
    nudged[:3, 3] += 1e-4  # float rounding of a resampler: accepted
    write(pred, "case_a.nii.gz", label_map(boxes=[LIVER]), nudged)
    assert len(evaluate_dirs(pred, truth, {1: "liver"}, progress=False)) == 2


def test_evaluate_volumes_checks_spacing_through_affine():
    arr = label_map(boxes=[LIVER])
    zoomed = AFFINE.copy()
    zoomed[2, 2] = 2.01  # 0.01 mm per slice, 0.16 mm over the grid
    with pytest.raises(EvaluationError, match=r"^ct7: .*grids"):
        evaluate_volumes(Volume(arr, zoomed), Volume(arr, AFFINE), {1: "liver"}, case="ct7")
    rows = evaluate_volumes(Volume(arr, AFFINE), Volume(arr, AFFINE), {1: "liver"}, case="ct7")
    assert rows[0]["case"] == "ct7" and rows[0]["dice"] == 1.0


def test_folder_errors(dirs, tmp_path):
    _, truth = dirs
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="prediction folder not found"):
        evaluate_dirs(tmp_path / "nope", truth, progress=False)
    with pytest.raises(EvaluationError, match="no NIfTI files"):
        evaluate_dirs(tmp_path / "empty", tmp_path / "empty", progress=False)


def test_workers_give_the_same_table(dirs):
    pred, truth = dirs
    one = evaluate_dirs(pred, truth, {1: "liver", 2: "spleen"}, progress=False)
    two = evaluate_dirs(pred, truth, {1: "liver", 2: "spleen"}, workers=2, progress=False)
    pd.testing.assert_frame_equal(one, two)


def _table(seed=0, n=40):
    rng = np.random.default_rng(seed)
    dice = np.clip(rng.normal(0.85, 0.08, n), 0, 1)
    hd = rng.gamma(2.0, 2.0, n)
    hd[:3] = np.nan  # three cases where one mask was empty
    return pd.DataFrame(
        {
            "case": [f"c{i}" for i in range(n)] * 2,
            "label": [1] * n + [2] * n,
            "label_name": ["liver"] * n + ["spleen"] * n,
            "dice": np.r_[dice, dice[::-1]],
            "hd95": np.r_[hd, hd[::-1]],
            "nsd": np.r_[dice**2, dice],
        }
    )


def test_summarize_ci_contains_mean_and_is_seeded():
    df = _table()
    s = summarize(df, n_boot=500, seed=3)
    assert s["label_name"].tolist() == ["liver", "spleen"]
    assert s["n_cases"].tolist() == [40, 40]
    for metric in ("dice", "hd95", "nsd"):
        assert (s[f"{metric}_ci_low"] < s[f"{metric}_mean"]).all()
        assert (s[f"{metric}_mean"] < s[f"{metric}_ci_high"]).all()
    liver = df[df["label"] == 1]
    assert s.loc[0, "dice_mean"] == pytest.approx(liver["dice"].mean())
    assert s.loc[0, "dice_median"] == pytest.approx(liver["dice"].median())
    assert s.loc[0, "dice_std"] == pytest.approx(liver["dice"].std())  # ddof=1, like pandas
    # NaN-aware: the mean of the defined HD95 values, and the undefined ones counted.
    assert s.loc[0, "hd95_mean"] == pytest.approx(np.nanmean(liver["hd95"]))
    assert s["hd95_n_undefined"].tolist() == [3, 3] and s["dice_n_undefined"].tolist() == [0, 0]

    pd.testing.assert_frame_equal(s, summarize(df, n_boot=500, seed=3))
    assert not s.equals(summarize(df, n_boot=500, seed=4))
    # A label's interval does not depend on which other labels are in the table.
    alone = summarize(df[df["label"] == 1], n_boot=500, seed=3)
    pd.testing.assert_frame_equal(alone, s.iloc[:1])


def test_summarize_edge_cases():
    one = pd.DataFrame(
        {"case": ["a"], "label": [1], "label_name": ["x"], "dice": [0.7], "hd95": [np.nan],
         "nsd": [0.5]}
    )  # fmt: skip
    s = summarize(one).iloc[0]
    assert s["dice_ci_low"] == s["dice_ci_high"] == 0.7
    assert math.isnan(s["dice_std"])
    assert math.isnan(s["hd95_mean"]) and math.isnan(s["hd95_ci_low"])
    assert s["hd95_n_undefined"] == 1
    with pytest.raises(EvaluationError, match="columns"):
        summarize(one.drop(columns="nsd"))


def test_run_evaluate_cli(dirs, tmp_path, capsys):
    pred, truth = dirs
    out = tmp_path / "report.csv"
    assert run_evaluate_cli(pred, truth, out, 2.0) == 0
    text = capsys.readouterr().out
    assert "Dice [95% CI]" in text and "NSD@2mm" in text
    assert "label_1" in text and "label_2" in text
    assert str(out) in text and out.is_file()


@pytest.mark.parametrize("where", ["truth folder", "MSD task folder"])
def test_label_names_come_from_the_truth_dataset_json(tmp_path, capsys, where):
    """An MSD ``dataset.json`` beside the labels names them (``labels`` values or nnU-Net names)."""
    import json

    task = tmp_path / "Task03_Liver"
    truth, pred = task / "labelsTr", tmp_path / "pred"
    write(truth, "liver_000.nii.gz", label_map(boxes=[LIVER, SPLEEN]))
    write(pred, "liver_000.nii.gz", label_map(boxes=[LIVER_SHIFTED, SPLEEN]))
    info = {"name": "liver", "labels": {"0": "background", "1": "liver", "2": "tumour"}}
    (truth if where == "truth folder" else task).joinpath("dataset.json").write_text(
        json.dumps(info)
    )
    assert run_evaluate_cli(pred, truth, tmp_path / "report.csv") == 0
    text = capsys.readouterr().out
    assert "liver" in text and "tumour" in text and "label_1" not in text
    df = evaluate_dirs(pred, truth, ["2"], progress=False)  # a value without a name: same names
    assert df["label_name"].tolist() == ["tumour"]
    named = evaluate_dirs(pred, truth, ["1=organ"], progress=False)  # a given name wins
    assert named["label_name"].tolist() == ["organ"]

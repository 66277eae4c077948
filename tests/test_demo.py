import json

import pytest

from medai_lab.cli import main
from medai_lab.demo import run_demo
from medai_lab.errors import MedaiError


def test_demo_runs_end_to_end_and_all_checks_pass(tmp_path, dcm2niix, capsys):
    assert run_demo(tmp_path / "demo", task="heart", seed=3, train_tasks=()) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["checks"] and all(summary["checks"].values())
    assert "dcm2niix agrees" in summary["checks"]
    assert set(summary["median_HU"]) == {"heart", "left_atrium"}
    assert (tmp_path / "demo" / "overview.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "nifti" / "heart_003.nii.gz").is_file()
    # A second run replaces its own earlier output.
    assert run_demo(tmp_path / "demo", task="heart", seed=3, train_tasks=()) == 0


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(MedaiError, match="not made by the demo"):
        run_demo(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_demo_trains_tracks_and_reports_every_task(tmp_path, store, capsys):
    """The model part with the smoke preset (the cpu preset's Dice >= 0.9 is `make demo`'s)."""
    import pandas as pd

    from medai_lab.tracking import make_client

    out = tmp_path / "demo"
    assert (
        run_demo(out, train_tasks=("lung", "liver", "heart"), preset="smoke", progress=False) == 0
    )
    printed = capsys.readouterr().out
    assert "mlflow ui --backend-store-uri" in printed
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["models"]["tasks"]
    assert [r["task"] for r in rows] == ["lung", "liver", "heart"]
    assert not any("Dice >=" in name for name in summary["checks"])  # smoke: numbers only
    client = make_client(store)
    for row in rows:
        assert client.get_run(row["mlflow_run"]).info.status == "FINISHED"
        work = out / "evaluation" / row["task"]
        # The demo's table is exactly what `medai-lab evaluate` writes for the same folders.
        cli_csv = tmp_path / f"{row['task']}.csv"
        argv = ["evaluate", str(work / "predictions"), str(work / "truth"), "--out", str(cli_csv)]
        assert main([*argv, "--nsd-tolerance", "2", "--labels", *_labels(row)]) == 0
        mine, cli = pd.read_csv(work / "per_case.csv"), pd.read_csv(cli_csv)
        pd.testing.assert_frame_equal(mine, cli)
        assert row["dice_mean"] == pytest.approx(mine.groupby("case")["dice"].mean().mean())
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6  # best and worst case per task
    assert all(f"<h2>{t}</h2>" in html for t in ("lung", "liver", "heart"))


def _labels(row: dict) -> list[str]:
    names = [k[len("dice ") :] for k in row if k.startswith("dice ")]
    return [f"{i}={name}" for i, name in enumerate(names, 1)]

import json
import math
import re

import pytest

from medai_lab.cli import main
from medai_lab.demo import EXPERIMENT, run_demo
from medai_lab.demo.estimate import StepTimes, estimate, fit_epochs, windows_per_volume
from medai_lab.errors import MedaiError
from medai_lab.tasks.config import compose


def test_demo_runs_end_to_end_and_all_checks_pass(tmp_path, dcm2niix, capsys):
    assert run_demo(tmp_path / "demo", task="heart", seed=3, train_tasks=()) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["checks"] and all(summary["checks"].values())
    assert "dcm2niix agrees" in summary["checks"]
    assert "de-identified pixels: only redacted slices changed" in summary["checks"]
    printed = capsys.readouterr().out
    assert [int(n) for n in re.findall(r"^\[(\d)/3\]", printed, re.M)] == [1, 2, 3]
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
    # the time of each run was announced before it ran, from steps measured here
    assert "on this machine (measured here" in printed
    timing = summary["models"]["timing"]
    assert [t["task"] for t in timing] == ["lung", "liver", "heart"]
    assert all(t["estimate_s"] > 0 and t["actual_s"] > 0 for t in timing)
    client = make_client(store)
    for row in rows:
        run = client.get_run(row["mlflow_run"])
        assert run.info.status == "FINISHED"
        # the printed link opens the UI on this run, in the demo's experiment
        exp = run.info.experiment_id
        assert client.get_experiment(exp).name == EXPERIMENT
        assert f"/#/experiments/{exp}/runs/{run.info.run_id}" in printed
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


def test_quick_demo_fits_training_into_the_time_left(tmp_path, store, capsys):
    """`medai-lab demo` trains one template for the epochs that fit (smoke-sized here)."""
    out = tmp_path / "demo"
    code = run_demo(out, task="heart", train_tasks=("heart",), preset="smoke",
                    progress=False, quick_minutes=0.5)  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert [int(n) for n in re.findall(r"^\[(\d)/7\]", printed, re.M)] == list(range(1, 8))
    match = re.search(r"training heart .*brief.*: (\d+) epoch\(s\) x (\d+) steps", printed)
    assert match and 1 <= int(match.group(1)) <= 12
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["run_urls"] and summary["models"]["experiment"] == EXPERIMENT
    assert "brief run" in printed


def test_window_count_is_what_monai_slides():
    import torch
    from monai.inferers import sliding_window_inference

    for preset, extra in (("cpu", ()), ("cpu", ("eval.overlap=0.0",)), ("smoke", ())):
        cfg = compose("liver", preset, extra)
        ph, task = cfg["data"]["phantom"], cfg["task"]
        grid = zip(ph["shape"], ph["spacing"], task["spacing"], strict=True)
        size = [math.ceil(int(n) * float(s) / float(t)) for n, s, t in grid]
        seen = []

        def count(x, seen=seen):
            seen.append(x.shape[0])
            return x

        sliding_window_inference(
            torch.zeros(1, 1, *size), task["patch_size"], 1, count,
            overlap=float(cfg["eval"]["overlap"]),
        )  # fmt: skip
        assert windows_per_volume(cfg) == sum(seen)


def test_more_time_buys_more_epochs_and_longer_estimates():
    cfg = compose("liver", "cpu", ("data.phantom.cases=15",))
    times = StepTimes(train_step_s=0.5, infer_batch_s=0.3, phantom_s=0.2)
    epochs = [fit_epochs(cfg, times, budget) for budget in (10, 60, 120, 600)]
    assert epochs == sorted(epochs) and epochs[0] == 1 and epochs[-1] > epochs[0]
    more = int(cfg["trainer"]["max_epochs"]) + 10
    longer = {**cfg, "trainer": {**cfg["trainer"], "max_epochs": more}}
    assert estimate(longer, times).seconds > estimate(cfg, times).seconds
    slower = StepTimes(1.0, 0.6, 0.4)
    assert estimate(cfg, slower).seconds == pytest.approx(2 * estimate(cfg, times).seconds)

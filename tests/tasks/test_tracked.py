"""A tracked training run: what lands in MLflow, how it ends, and resuming into the same run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from medai_lab.tracking import data_manifest, make_client

pl = pytest.importorskip("pytorch_lightning")
pytest.importorskip("mlflow")


def _artifacts(client, run_id: str, path: str = "") -> set[str]:
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_run_contents(phantoms, store: str, tmp_path: Path) -> None:
    from medai_lab.tasks import lung

    data = phantoms("lung", 3)
    result = lung.train(
        "smoke",
        data,
        ["trainer.max_epochs=2", "data.val_fraction=0.34"],
        out_dir=tmp_path,
        progress=False,
        export=("torchscript", "onnx"),
        register="lung-test",
        command_line=["medai-lab", "train", "lung", "--preset", "smoke"],
    )
    client = make_client(store)
    run_id = result.extra["mlflow_run_id"]
    assert json.loads((tmp_path / "lung" / "tracking.json").read_text())["run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "medai-lab-lung"
    params = run.data.params
    assert params["task.name"] == "lung" and params["model.name"] == "unet"
    assert params["trainer.max_epochs"] == "2" and params["trainer.precision"] == "32-true"
    history = client.get_metric_history(run_id, "val/dice_mean")
    assert sorted(m.step for m in history) == [0, 1]  # one value per epoch
    final = run.data.metrics
    assert final["final/dice_mean"] == pytest.approx(result.metrics["dice_mean"])
    assert final["final/dice/lung"] == pytest.approx(result.metrics["dice/lung"])

    assert _artifacts(client, run_id) == {
        "run_card/run_card.json",
        "run_card/run_card.md",
        "evaluation/case_metrics.csv",
        "overlays/best_case.png",
        "overlays/worst_case.png",
        "model/torchscript/model.ts",
        "model/torchscript/model.ts.json",
        "model/onnx/model.onnx",
        "model/onnx/model.onnx.json",
    }
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    table = pd.read_csv(local / "evaluation" / "case_metrics.csv")
    assert sorted(table["case"].unique()) == sorted(result.extra["val_cases"])
    assert table["dice"].tolist() == pytest.approx(result.case_metrics["dice"].tolist())
    card = json.loads((local / "run_card" / "run_card.json").read_text())
    files = [
        Path(data, sub, f"{c}.nii.gz")
        for c in ["lung_000", "lung_001", "lung_002"]
        for sub in ("imagesTr", "labelsTr")
    ]
    assert card["data"]["manifest_sha256"] == data_manifest(files, data)["manifest_sha256"]
    assert card["command_line"][:3] == ["medai-lab", "train", "lung"]
    assert card["environment"]["torch"] and card["environment"]["monai"]
    assert card["deid_profile"] is None  # phantoms never went through de-identification
    assert (local / "overlays" / "best_case.png").read_bytes()[:4] == b"\x89PNG"
    sidecar = json.loads((local / "model" / "torchscript" / "model.ts.json").read_text())
    assert sidecar["labels"] == {str(k): v for k, v in result.config["task"]["labels"].items()}
    assert sidecar["spacing"] == result.config["task"]["spacing"]
    (version,) = client.search_model_versions("name='lung-test'")
    assert version.run_id == run_id and version.source.endswith("/model")


def test_failure_after_fit_marks_the_run_failed(phantoms, store: str, tmp_path, monkeypatch):
    from medai_lab.export import ExportError
    from medai_lab.tasks import runner

    def broken(*args, **kwargs):
        raise ExportError("disk full")

    monkeypatch.setattr(runner, "export_run", broken)
    with pytest.raises(ExportError, match="disk full"):
        runner.train(
            "heart",
            "smoke",
            phantoms("heart", 2),
            ["trainer.max_epochs=1"],
            out_dir=tmp_path,
            progress=False,
            track="broken",
        )
    (run,) = make_client(store).search_runs(
        [make_client(store).get_experiment_by_name("broken").experiment_id]
    )
    assert run.info.status == "FAILED"


KILLER = """
import os, signal, sys
import pytorch_lightning as pl
from medai_lab.tasks import liver

class DieInSecondEpoch(pl.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.current_epoch == 1:  # epoch 0 and its checkpoint are on disk
            os.kill(os.getpid(), signal.SIGKILL)

liver.train("smoke", sys.argv[1], ["trainer.max_epochs=3"], out_dir=sys.argv[2],
            progress=False, export=(), callbacks=[DieInSecondEpoch()])
"""


def test_resume_after_kill_9_continues_the_same_run(phantoms, store: str, tmp_path) -> None:
    from medai_lab.tasks import liver

    data = phantoms("liver", 2)
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER))
    proc = subprocess.run(
        [sys.executable, str(script), str(data), str(tmp_path / "runs")],
        env={**os.environ, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    run_id = json.loads((tmp_path / "runs" / "liver" / "tracking.json").read_text())["run_id"]
    client = make_client(store)
    assert client.get_run(run_id).info.status == "RUNNING"  # nobody could end it

    result = liver.train(
        "smoke",
        data,
        ["trainer.max_epochs=3"],
        out_dir=tmp_path / "runs",
        progress=False,
        export=(),
        resume=True,
    )
    assert result.extra["mlflow_run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["medai_lab.resume_count"] == "1"
    steps = [m.step for m in client.get_metric_history(run_id, "val/dice_mean")]
    assert sorted(steps) == [0, 1, 2]

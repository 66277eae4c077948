"""TrackingCallback on real Lightning fits against real SQLite MLflow stores."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path
from typing import ClassVar

import pytest

pytest.importorskip("pytorch_lightning")
pytest.importorskip("mlflow")

from tiny_models import TinyModule, loaders, make_trainer

from medai_lab.tracking import TrackingCallback, build_run_card, make_client, ui_command
from medai_lab.tracking.runcard import repo_root

CONFIG = {"model": {"lr": 0.05, "hidden": [8, 4]}, "data": {"cases": 2}, "note": "x" * 7000}


def fit(callback: TrackingCallback, module: TinyModule | None = None, epochs: int = 2) -> None:
    make_trainer(callback, max_epochs=epochs).fit(module or TinyModule(), *loaders())


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_normal_fit_finishes_with_params_metrics_card_and_table(store: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "case_000").mkdir(parents=True)
    (data / "case_000" / "image.nii.gz").write_bytes(b"image bytes")
    (data / "case_000" / "label.nii.gz").write_bytes(b"label bytes")
    card = build_run_card(
        CONFIG, sorted(data.rglob("*.nii.gz")), ["medai-lab", "train", "lung"], "basic"
    )
    before = signal.getsignal(signal.SIGTERM)
    callback = TrackingCallback("lung", CONFIG, run_name="first", run_card=card)
    fit(callback)

    assert signal.getsignal(signal.SIGTERM) is before
    client = make_client(store)
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED" and callback.status == "FINISHED"
    assert run.info.run_name == "first"
    # artifacts live next to the SQLite file, not in ./mlruns
    assert run.info.artifact_uri.startswith((tmp_path / "artifacts").as_uri())

    params = run.data.params
    assert params["model.lr"] == "0.05"
    assert params["model.hidden"] == "[8, 4]"
    assert params["data.cases"] == "2"
    assert len(params["note"]) == 6000 and params["note"].endswith("...")

    for key in ("train_loss", "val_loss", "module_epoch_metric"):
        assert [s for s, _ in history(client, callback.run_id, key)] == [0, 1], key
    assert history(client, callback.run_id, "module_epoch_metric") == [(0, 1.0), (1, 2.0)]

    tags = run.data.tags
    assert tags["medai_lab.data_manifest_sha256"] == card["data"]["manifest_sha256"]
    assert tags["medai_lab.command_line"] == "medai-lab train lung"

    names = {a.path for a in client.list_artifacts(callback.run_id, "run_card")}
    assert names == {"run_card/run_card.json", "run_card/run_card.md"}
    local = Path(client.download_artifacts(callback.run_id, "run_card", str(tmp_path / "dl")))
    logged = json.loads((local / "run_card.json").read_text())
    lock = repo_root() / "environments" / "requirements-cpu.lock"
    assert logged["environment"]["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    for key in ("python", "torch", "monai", "lightning", "mlflow"):
        assert logged["environment"][key]
    assert logged["data"]["file_count"] == 2
    assert logged["data"]["manifest_sha256"] == card["data"]["manifest_sha256"]
    assert logged["deid_profile"] == "basic"
    assert card["data"]["manifest_sha256"] in (local / "run_card.md").read_text()
    assert str(data) not in (local / "run_card.json").read_text()

    assert [a.path for a in client.list_artifacts(callback.run_id, "tables")] == [
        "tables/per_case.csv"
    ]
    csv = Path(client.download_artifacts(callback.run_id, "tables/per_case.csv", str(tmp_path)))
    assert csv.read_text().splitlines() == ["case,dice", "case_000,0.5", "case_001,0.7"]

    # after fit the artifact API still works (synchronously) on the finished run
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert callback.log_figure(fig, "curve") == "figures/curve.png"
    plt.close(fig)
    assert callback.log_dict({"dice": 0.7}, "summary") == "summary.json"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert callback.log_file(notes, "extra") == "extra/notes.txt"
    paths = {a.path for a in client.list_artifacts(callback.run_id)}
    assert {"summary.json", "figures", "extra"} <= paths
    png = client.list_artifacts(callback.run_id, "figures")[0]
    assert png.path == "figures/curve.png" and png.file_size > 1000
    assert callback.overhead_s < 1.0
    assert "mlflow ui --backend-store-uri" in ui_command(store)


def test_exception_marks_failed_and_propagates(store: str) -> None:
    before = signal.getsignal(signal.SIGTERM)
    callback = TrackingCallback("lung", CONFIG)
    with pytest.raises(RuntimeError, match="boom"):
        fit(callback, TinyModule(fail_at_epoch=1))
    run = make_client(store).get_run(callback.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["medai_lab.exception"] == "RuntimeError"
    # the epoch that completed was sent before the run ended
    assert [m.step for m in make_client(store).get_metric_history(callback.run_id, "val_loss")]
    assert signal.getsignal(signal.SIGTERM) is before


def test_keyboard_interrupt_marks_killed(store: str, restore_signals: None) -> None:
    # Lightning 2.6 catches KeyboardInterrupt, calls on_exception, then sys.exit(1).
    callback = TrackingCallback("lung", CONFIG)
    with pytest.raises(SystemExit) as exc:
        fit(callback, TinyModule(fail_at_epoch=0, fail_with=KeyboardInterrupt))
    assert exc.value.code == 1
    run = make_client(store).get_run(callback.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["medai_lab.exception"] == "KeyboardInterrupt"


def test_resume_continues_the_same_run(store: str) -> None:
    first = TrackingCallback("lung", CONFIG, run_name="resumable")
    with pytest.raises(RuntimeError):
        fit(first, TinyModule(fail_at_epoch=1))
    client = make_client(store)
    assert client.get_run(first.run_id).info.status == "FAILED"

    changed = {**CONFIG, "model": {**CONFIG["model"], "lr": 0.01}}
    second = TrackingCallback("lung", changed, run_id=first.run_id)
    fit(second, epochs=2)
    assert second.run_id == first.run_id
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.lr"] == "0.05"  # params are immutable: first value kept
    assert run.data.tags["medai_lab.config_changed_on_resume"] == "model.lr"
    assert run.data.tags["medai_lab.resume_count"] == "1"
    steps = [s for s, _ in history(client, first.run_id, "val_loss")]
    assert steps == [0, 0, 1]  # epoch 0 of the first fit, then epochs 0-1 of the second
    cards = {a.path for a in client.list_artifacts(first.run_id, "run_card/resume-1")}
    assert cards == {"run_card/resume-1/run_card.json", "run_card/resume-1/run_card.md"}

    # a process that died (run left RUNNING) is taken over the same way
    orphan = client.create_run(run.info.experiment_id)
    third = TrackingCallback("lung", CONFIG, run_id=orphan.info.run_id)
    fit(third, epochs=1)
    assert client.get_run(orphan.info.run_id).info.status == "FINISHED"


def test_embedded_default_store(
    tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medai_lab.tracking import default_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MEDAI_MLFLOW_DIR", str(tmp_path))
    uri = default_tracking_uri()
    assert uri == f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    assert (tmp_path / "artifacts").is_dir()
    (tmp_path / "mlflow.db").write_bytes(mlflow_template.read_bytes())  # skip the migrations

    callback = TrackingCallback("embedded", {"a": {"b": 1}})
    fit(callback, epochs=1)
    assert callback.tracking_uri == uri
    run = make_client(uri).get_run(callback.run_id)
    assert run.info.status == "FINISHED"
    run_dir = tmp_path / "artifacts" / "embedded" / callback.run_id / "artifacts"
    assert (run_dir / "run_card" / "run_card.json").is_file()
    assert (run_dir / "tables" / "per_case.csv").is_file()
    assert f"--default-artifact-root {(tmp_path / 'artifacts').as_uri()}" in ui_command()


def test_logging_needs_a_run(store: str) -> None:
    callback = TrackingCallback("lung", CONFIG)
    with pytest.raises(RuntimeError, match="no run yet"):
        callback.log_dict({"a": 1}, "a")


def test_background_queue_is_cheap(store: str) -> None:
    """Queueing a metric point costs microseconds on the training thread."""
    from medai_lab.tracking.worker import BackgroundLogger

    client = make_client(store)
    exp = client.create_experiment("bench")
    run = client.create_run(exp)
    worker = BackgroundLogger(client, run.info.run_id)
    start = time.perf_counter()
    for step in range(200):
        worker.log_metrics({"loss": 1.0 / (step + 1), "dice": 0.5}, step)
    queued = time.perf_counter() - start
    assert worker.close(timeout=60)
    assert queued / 200 < 0.005
    assert worker.points_sent == 400 and not worker.errors
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 200


def test_new_sqlite_store_keeps_artifacts_beside_the_db(mlflow_template: Path) -> None:
    client = make_client(f"sqlite:///{mlflow_template.as_posix()}")
    default = client.get_experiment("0")  # MLflow's own experiment, made with the schema
    assert default.artifact_location == (mlflow_template.parent / "artifacts" / "0").as_uri()


def test_failure_in_a_later_validate_leaves_the_fit_run_alone(store: str) -> None:
    callback = TrackingCallback("lung", CONFIG)
    module = TinyModule()
    trainer = make_trainer(callback, max_epochs=1)
    trainer.fit(module, *loaders())
    module.fail_at_epoch = 0
    module.validation_step = module.training_step  # now raises
    with pytest.raises(RuntimeError, match="boom"):
        trainer.validate(module, loaders()[1])
    assert make_client(store).get_run(callback.run_id).info.status == "FINISHED"


class Probe(TinyModule):
    """Looks into the store at the start of epoch 1: epoch 0 must be there already."""

    seen: ClassVar[dict[str, list[int]]] = {}

    def on_train_epoch_start(self) -> None:
        if self.current_epoch == 1:
            callback = TrackingCallback.of(self.trainer)
            assert callback.flush(timeout=30)
            client = make_client(callback.tracking_uri)
            for key in ("train_loss", "val_loss", "module_epoch_metric"):
                history = client.get_metric_history(callback.run_id, key)
                Probe.seen[key] = [m.step for m in history]


def test_epoch_metrics_are_sent_as_the_epoch_ends(store: str) -> None:
    callback = TrackingCallback("lung", CONFIG)
    fit(callback, Probe(), epochs=2)
    assert Probe.seen == {"train_loss": [0], "val_loss": [0], "module_epoch_metric": [0]}
    steps = [m.step for m in make_client(store).get_metric_history(callback.run_id, "val_loss")]
    assert sorted(steps) == [0, 1]

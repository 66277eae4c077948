"""SIGTERM during a real fit in a child process: the child exits and the run ends KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")
pytest.importorskip("mlflow")

from medai_lab.tracking import make_client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from tiny_models import TinyModule, loaders, make_trainer
    from medai_lab.tracking import TrackingCallback

    callback = TrackingCallback("sigterm", {{"model": {{"lr": 0.05}}}}, tracking_uri={uri!r})
    make_trainer(callback, max_epochs=100_000).fit(TinyModule(sleep=0.05), *loaders())
    print("FIT RETURNED")
    """
)


def wait_for(predicate, proc: subprocess.Popen, log: Path, timeout: float = 240.0):
    """Poll ``predicate`` until it returns something truthy; fail if the child dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"child exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"timed out waiting for the child:\n{log.read_text()[-3000:]}")


def test_sigterm_marks_run_killed_and_child_exits(store: str, tmp_path: Path) -> None:
    script = CHILD.format(here=str(HERE), uri=store)
    log = tmp_path / "child.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        client = make_client(store)

        def running_run():
            exp = client.get_experiment_by_name("sigterm")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            return runs[0] if runs else None

        run = wait_for(running_run, proc, log)
        # wait until training is under way (one epoch sent), then terminate
        wait_for(lambda: client.get_metric_history(run.info.run_id, "train_loss"), proc, log)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert "FIT RETURNED" not in output
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "KILLED"
    assert ended.info.end_time is not None
    assert ended.data.tags["medai_lab.exception"] == "TrainingTerminated"


def test_guard_is_main_thread_only_chains_and_restores(restore_signals: None) -> None:
    import threading

    from medai_lab.tracking.sigterm import SigtermGuard, TrainingTerminated

    calls: list[int] = []

    def user_handler(signum: int, frame: object) -> None:
        calls.append(signum)

    signal.signal(signal.SIGTERM, user_handler)
    guard = SigtermGuard()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(guard.install()))
    thread.start()
    thread.join()
    assert result == [False] and signal.getsignal(signal.SIGTERM) is user_handler

    assert guard.install()
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingTerminated) as exc:
        handler(signal.SIGTERM, None)
    assert exc.value.code == 143 and calls == [signal.SIGTERM]  # the user's handler ran first
    handler(signal.SIGTERM, None)  # repeats during shutdown are ignored
    assert calls == [signal.SIGTERM]

    table = {signal.SIGTERM: handler}  # like Lightning's restore table
    guard.restore(table)
    assert signal.getsignal(signal.SIGTERM) is user_handler
    assert table[signal.SIGTERM] is user_handler
    handler(signal.SIGTERM, None)  # a stale copy acts like the handler it replaced
    assert calls == [signal.SIGTERM, signal.SIGTERM]

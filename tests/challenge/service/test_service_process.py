"""``python -m medai_lab.challenge.service`` as the hub runs it: it locks the folder down,
refuses anonymous callers, supervises the evaluator (which scores what is queued) and takes
the evaluator's whole process group with it when the hub stops it."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import requests
from hub.hubctl import descendants  # tests/hub

from medai_lab.challenge.api import Challenge
from medai_lab.hub.settings import free_port


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(what: str, check, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_service_supervises_the_evaluator_and_stops_it(make_challenge, tmp_path):
    ch = make_challenge()
    os.chmod(ch.root, 0o755)
    preds = tmp_path / "preds"
    shutil.copytree(ch.spec.phase("validation").labels, preds)
    sid = int(ch.submit(preds, team="owls", phase="validation", fmt="predictions")["id"])
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/challenge/",
        "JUPYTERHUB_SERVICE_NAME": "challenge",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",  # no hub: no one passes
        "JUPYTERHUB_API_TOKEN": "service-token",
    }
    evaluate = [sys.executable, "-m", "medai_lab.cli", "challenge", "evaluate", str(ch.root)]
    evaluate += ["--watch", "1e9", "--no-track"]
    cmd = [sys.executable, "-m", "medai_lab.challenge.service", "--dir", str(ch.root), "--"]
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, *evaluate], env=env, stdout=out, stderr=subprocess.STDOUT)
    evaluator = None
    try:
        url = f"http://127.0.0.1:{port}/services/challenge/api/submissions"

        def answered() -> int | None:
            try:
                return requests.get(url, timeout=5).status_code
            except requests.ConnectionError:
                return None

        assert _wait("the service", answered) == 401
        assert stat.S_IMODE(ch.root.stat().st_mode) == 0o700
        evaluator = _wait("the evaluator", lambda: _leader_below(proc.pid))
        row = _wait("the score", lambda: Challenge.open(ch.root).store.score(sid), 120)
        assert row["n_failed"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
        assert not _group_alive(evaluator), "the evaluator outlived the service"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if evaluator is not None and _group_alive(evaluator):
            os.killpg(evaluator, signal.SIGKILL)


def _leader_below(pid: int) -> int | None:
    """The evaluator: the process below ``pid`` that leads its own process group."""
    for p in descendants(pid):
        try:
            if os.getpgid(p) == p:
                return p
        except ProcessLookupError:
            continue
    return None

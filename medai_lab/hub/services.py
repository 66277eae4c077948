"""The hub-managed services: MLflow (behind hub auth), the idle culler, workshop PACS, challenge.

Each function returns the ``c.JupyterHub.services`` entry and, where needed, the role that
grants it API scopes. Services run as the hub's account and are restarted by the hub if
they exit.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from medai_lab.challenge.service import SERVICE as CHALLENGE
from medai_lab.hub.settings import HubSettings

MLFLOW = "mlflow"
CULLER = "idle-culler"
PACS = "pacs"
EVALUATOR = CHALLENGE  # one service: the submission endpoint supervises the evaluator


def _tool(name: str) -> str:
    """A console script of this Python environment (falls back to PATH)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _authproxy(
    upstream_port: int, ready_path: str, command: list[str], *, strip_prefix: bool = False
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "medai_lab.hub.authproxy",
        "--upstream-port",
        str(upstream_port),
        "--ready-path",
        ready_path,
        *(["--strip-prefix"] if strip_prefix else []),
        "--",
        *command,
    ]


def mlflow_service(s: HubSettings) -> dict[str, Any]:
    """MLflow tracking server on a private port, served at ``/services/mlflow`` with hub auth.

    The backend store is SQLite in the data folder or PostgreSQL (``--postgres``); artifacts
    are proxied by the server (``mlflow-artifacts:/``) into ``s.artifacts`` on shared disk, so
    clients need no filesystem or object-store access of their own.
    """
    prefix = f"/services/{MLFLOW}"
    s.artifacts.mkdir(parents=True, exist_ok=True)
    (s.data / "mlflow").mkdir(parents=True, exist_ok=True)
    server = [
        _tool("mlflow"),
        "server",
        "--backend-store-uri",
        s.mlflow_store,
        "--serve-artifacts",
        "--artifacts-destination",
        s.artifacts.as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(s.mlflow_port),
        "--workers",
        "1",
        "--static-prefix",
        prefix,
    ]
    return {
        "name": MLFLOW,
        "url": f"http://127.0.0.1:{s.mlflow_service_port}",
        "command": _authproxy(s.mlflow_port, f"{prefix}/health", server),
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "MLflow experiment tracking (shared by all users)"},
        # No GenAI job runner (it forks seven huey consumers that outlive a killed server).
        "environment": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        "cwd": str(s.data / "mlflow"),
    }


def culler_service(s: HubSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """jupyterhub-idle-culler: stop servers idle for ``cull_timeout`` s (frees their GPUs)."""
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={s.cull_timeout}",
        f"--cull-every={s.cull_every}",
    ]
    if s.cull_max_age:
        command.append(f"--max-age={s.cull_max_age}")
    role = {
        "name": CULLER,
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": [CULLER],
    }
    return {"name": CULLER, "command": command}, role


def pacs_service(s: HubSettings) -> dict[str, Any]:
    """The workshop PACS (Orthanc + DICOMweb) at ``/services/pacs`` behind hub auth.

    Kernels use ``--url $JUPYTERHUB_PUBLIC_URL/services/pacs/dicom-web`` with their token.
    """
    folder = s.data / "pacs"
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        _tool("medai-lab"),
        "pacs",
        "serve",
        "--dir",
        str(folder),
        "--http-port",
        str(s.pacs_http_port),
    ]
    return {
        "name": PACS,
        "url": f"http://127.0.0.1:{s.pacs_service_port}",
        "command": _authproxy(s.pacs_http_port, "/system", command, strip_prefix=True),
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "workshop PACS (DICOMweb)"},
    }


def evaluator_service(s: HubSettings) -> dict[str, Any]:
    """The hackathon at ``/services/challenge``: hub users submit, the evaluator scores.

    Runs as the hub's account (the evaluator's account), which alone can read the challenge
    folder: the service makes it private, takes submissions from hub users over HTTP
    (:mod:`medai_lab.challenge.service`), and supervises ``medai-lab challenge evaluate``
    (``challenge_workers`` at once; 0: no evaluator, the organiser runs it).
    """
    command = [sys.executable, "-m", "medai_lab.challenge.service", "--dir", s.challenge_dir]
    if s.challenge_workers > 0:
        evaluate = [_tool("medai-lab"), "challenge", "evaluate", s.challenge_dir, "--watch", "1e9"]
        if s.challenge_workers > 1:
            evaluate += ["--workers", str(s.challenge_workers)]
        if not s.mlflow:
            evaluate.append("--no-track")
        command += ["--", *evaluate]
    # The evaluator runs on the hub machine as the hub's account: it writes to the store directly.
    env = {"MLFLOW_TRACKING_URI": s.mlflow_store} if s.mlflow else {}
    return {
        "name": EVALUATOR,
        "url": f"http://127.0.0.1:{s.challenge_service_port}",
        "command": command,
        "environment": env,
        "info": {"description": "hackathon submissions, status and leaderboard"},
    }


def access_scopes(s: HubSettings) -> list[str]:
    """``access:services`` scopes every user (and their servers' tokens) get."""
    names = ([MLFLOW] if s.mlflow else []) + ([PACS] if s.pacs else [])
    names += [CHALLENGE] if s.challenge_dir else []
    return [f"access:services!service={n}" for n in names]

"""The MLflow UI behind Jupyter's authentication, through ``jupyter-server-proxy``.

Entry point, group ``jupyter_serverproxy_servers``:
``mlflow = "medai_lab.server.proxy:mlflow_server"``.
``{base_url}mlflow/`` then starts ``mlflow server`` on 127.0.0.1 on a free port, on the same
tracking store the kernels use (:func:`medai_lab.tracking.store.default_tracking_uri`:
``$MLFLOW_TRACKING_URI`` or the embedded SQLite file), and proxies to it.

MLflow 3 serves every route under ``--static-prefix``; the proxy keeps the full path
(``absolute_url``), so the UI's relative links and its ``ajax-api`` calls resolve under
``{base_url}mlflow/`` on any Jupyter base URL (JupyterHub's ``/user/NAME/`` included). MLflow's
security middleware only answers requests whose Host is local: the proxy sends the backend's
own address as Host, and leaves Origin alone, so MLflow's cross-origin checks still apply.
"""

from __future__ import annotations

import sys
from typing import Any


def mlflow_command(port: int | str, base_url: str = "/", uri: str | None = None) -> list[str]:
    """``mlflow server`` on 127.0.0.1:``port`` serving under ``{base_url}mlflow``.

    Parameters
    ----------
    port
        The port (or jupyter-server-proxy's ``{port}`` placeholder).
    base_url
        Jupyter's base URL (ends with ``/``).
    uri
        Tracking URI; default: the kernels' store.
    """
    from medai_lab.tracking.store import artifact_root_for, resolve_tracking_uri

    uri = resolve_tracking_uri(uri)
    prefix = "/" + (base_url.strip("/") + "/mlflow").lstrip("/")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    root = artifact_root_for(uri)
    if root is not None:
        cmd += ["--default-artifact-root", root]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return [*cmd, "--static-prefix", prefix]


def mlflow_server() -> dict[str, Any]:
    """jupyter-server-proxy configuration of the ``mlflow`` server process.

    Returns
    -------
    dict
        ``command`` (a callable of ``port`` and ``base_url``, so the tracking URI is read when
        the UI is first opened), ``absolute_url``, ``timeout``, the Host override, and no
        launcher entry of its own (the MedAI Lab launcher has the MLflow item).
    """

    def command(port: int, base_url: str) -> list[str]:
        from medai_lab.tracking.store import sqlite_path

        cmd = mlflow_command(port, base_url)
        db = sqlite_path(cmd[cmd.index("--backend-store-uri") + 1])
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        return cmd

    return {
        "command": command,
        "absolute_url": True,
        "timeout": 120,  # first start creates and migrates the SQLite schema
        "new_browser_tab": True,
        # No job runner (six huey worker processes for GenAI jobs) behind a notebook server.
        "environment": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        "request_headers_override": {"Host": "127.0.0.1:{port}"},
        "launcher_entry": {"enabled": False, "title": "MLflow"},
    }

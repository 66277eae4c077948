"""Shared by the JupyterLab benchmarks: a free port and an isolated Jupyter environment."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(base: Path) -> dict[str, str]:
    """Environment for a ``jupyter lab`` whose config, data, runtime and IPython folders live
    under ``base`` (nothing of the user's), with news and update checks off."""
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_PATH", None)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        (base / name).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / name)
    settings = base / "JUPYTER_CONFIG_DIR" / "lab" / "user-settings"
    notes = settings / "@jupyterlab" / "apputils-extension"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"})
    )
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(base / "workspaces")
    return env

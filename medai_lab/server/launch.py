"""``medai-lab lab``: JupyterLab with MedAI Lab enabled, offline-safe, on one tracking store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError

# The source checkout's config (editable installs); a wheel installs the same files to etc/jupyter
# and etc/ipython, where Jupyter and IPython find them without help.
_CHECKOUT_CONFIG = Path(__file__).resolve().parents[2] / "jupyter-config"


def lab_argv(port: int | None, root: str | None, ip: str, no_browser: bool) -> list[str]:
    """Command-line arguments for ``LabApp`` (no news, no update checks)."""
    argv = [
        f"--ServerApp.ip={ip}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if port is not None:
        argv.append(f"--ServerApp.port={port}")
    if root is not None:
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise MedaiError(f"--root: not a folder: {root}")
        argv.append(f"--ServerApp.root_dir={folder.resolve()}")
    if no_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # containers; Jupyter refuses root otherwise
    return argv


def lab_environ() -> dict[str, str]:
    """The environment for the server, its kernels and the MLflow UI.

    ``MLFLOW_TRACKING_URI`` is set to the resolved store (so every kernel and the proxied UI
    agree); in a source checkout ``jupyter-config/`` is put on ``JUPYTER_CONFIG_PATH`` so the
    server extension is enabled without installing the wheel.
    """
    from medai_lab.tracking.store import resolve_tracking_uri

    out = dict(os.environ)
    out["MLFLOW_TRACKING_URI"] = resolve_tracking_uri(out.get("MLFLOW_TRACKING_URI"))
    if (_CHECKOUT_CONFIG / "jupyter_server_config.d").is_dir():
        paths = [p for p in out.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
        if str(_CHECKOUT_CONFIG) not in paths:
            out["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(_CHECKOUT_CONFIG), *paths])
    return out


def run_lab(args: argparse.Namespace) -> int:
    """Start JupyterLab in this process (Ctrl-C stops it and its kernels)."""
    try:
        from jupyterlab.labapp import LabApp
    except ImportError:
        raise MedaiError("JupyterLab is missing: pip install 'medai-lab[lab]'") from None
    argv = lab_argv(args.port, args.root, args.ip, args.no_browser)
    os.environ.update(lab_environ())
    LabApp.launch_instance(argv=argv)
    return 0


def add_parser(sub: Any) -> None:
    """Register ``medai-lab lab`` on the CLI's subparsers."""
    p = sub.add_parser("lab", help="start JupyterLab with MedAI Lab enabled (offline-safe)")
    p.add_argument("--port", type=int, default=None, help="port (default: Jupyter's, 8888)")
    p.add_argument("--root", default=None, help="folder the file browser starts in (default: .)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=run_lab)

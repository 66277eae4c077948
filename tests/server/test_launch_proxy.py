"""``medai-lab lab`` arguments and environment; the MLflow proxy entry's configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from medai_lab.cli import build_parser
from medai_lab.errors import MedaiError
from medai_lab.server.launch import lab_argv, lab_environ
from medai_lab.server.proxy import mlflow_command, mlflow_server


def test_cli_parses_lab() -> None:
    args = build_parser().parse_args(["lab", "--port", "9999", "--no-browser", "--root", "."])
    assert (args.port, args.no_browser, args.root, args.ip) == (9999, True, ".", "127.0.0.1")


def test_lab_argv_is_offline_safe(tmp_path: Path) -> None:
    argv = lab_argv(9999, str(tmp_path), "127.0.0.1", True)
    assert "--LabApp.news_url=None" in argv
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in argv
    assert "--ServerApp.ip=127.0.0.1" in argv and "--ServerApp.port=9999" in argv
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in argv and "--no-browser" in argv
    with pytest.raises(MedaiError, match="not a folder"):
        lab_argv(None, str(tmp_path / "missing"), "127.0.0.1", False)


def test_lab_environ_sets_the_tracking_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDAI_MLFLOW_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = lab_environ()
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0].endswith("jupyter-config")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://db/mlflow")
    assert lab_environ()["MLFLOW_TRACKING_URI"] == "postgresql://db/mlflow"


def test_mlflow_command_uses_the_kernels_store(monkeypatch, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cmd = mlflow_command(5123, "/user/ana/")
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == uri
    assert cmd[cmd.index("--default-artifact-root") + 1] == (tmp_path / "store/artifacts").as_uri()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[cmd.index("--static-prefix") + 1] == "/user/ana/mlflow"
    assert mlflow_command(1, "/")[-1] == "/mlflow"


def test_proxy_entry_is_valid_for_jupyter_server_proxy(monkeypatch, tmp_path: Path) -> None:
    config = pytest.importorskip("jupyter_server_proxy.config")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}")
    entry = mlflow_server()
    process = config.ServerProcess(name="mlflow", **entry)
    assert process.absolute_url is True and process.launcher_entry.enabled is False
    assert entry["request_headers_override"] == {"Host": "127.0.0.1:{port}"}
    assert entry["environment"] == {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = entry["command"](port=4321, base_url="/")
    assert "4321" in cmd and (tmp_path / "db").is_dir()

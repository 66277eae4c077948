"""``medai-lab hub``: generated configuration, usage export, refusals."""

from __future__ import annotations

import csv
import json
import os

import pytest

from medai_lab.cli import main
from medai_lab.hub.allocator import GpuAllocator
from medai_lab.hub.inventory import parse_inventory
from medai_lab.hub.settings import HubSettings


def test_print_config_writes_settings(tmp_path, capsys, hub_components):
    data = tmp_path / "hub"
    argv = ["hub", "--data", str(data), "--gpus", "0:2,MIG-abc", "--admin", "tutor", "ta"]
    argv += ["--group-quota", "students=1", "--postgres", "postgresql://u:pw@127.0.0.1:5/m"]
    argv += ["--print-config", "--cull-timeout", "600"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "GPU pool: 3 unit(s): 0#0, 0#1, MIG-abc" in out and "u:***@" in out
    assert "jupyterhub -f" in out and "pw@" not in out
    settings = HubSettings.load(data / "medai_hub.json")
    assert settings.admins == ["tutor", "ta"]
    assert settings.policy["group_quotas"] == {"students": 1}
    assert settings.mlflow_store.startswith("postgresql+psycopg2://u:pw@")
    assert all(getattr(settings, p) for p in ("hub_port", "proxy_api_port", "mlflow_port"))
    config = (data / "jupyterhub_config.py").read_text()
    assert "HubSettings.load(" in config and str(data / "medai_hub.json") in config
    compile(config, "jupyterhub_config.py", "exec")
    assert json.loads((data / "medai_hub.json").read_text())["cull_timeout"] == 600


def test_root_needs_an_account(tmp_path, capsys, monkeypatch, hub_components):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert main(["hub", "--data", str(tmp_path), "--gpus", "none", "--print-config"]) == 2
    assert "--run-as ACCOUNT" in capsys.readouterr().err


def test_export_usage(tmp_path, capsys):
    alloc = GpuAllocator(parse_inventory("0"), state_path=tmp_path / "gpu-state.sqlite")
    alloc.allocate("ann")
    alloc.release("ann")
    out = tmp_path / "usage.csv"
    assert main(["hub", "--data", str(tmp_path), "--export-usage", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["user"] for r in rows] == ["ann"] and rows[0]["sessions"] == "1"
    assert main(["hub", "--data", str(tmp_path / "nope"), "--export-usage", str(out)]) == 2


@pytest.mark.parametrize("bad", ["students", "=3", "g=x"])
def test_bad_quota(bad, capsys):
    with pytest.raises(SystemExit):
        main(["hub", "--group-quota", bad, "--print-config"])

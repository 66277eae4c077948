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
    assert "medai_lab.hub.app -f" in out and "pw@" not in out
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


def test_export_usage_counts_cpu_sessions(tmp_path, capsys):
    """A hub without GPUs (every server on the CPU profile) still has users to account for."""
    now = [1_000_000.0]
    state = tmp_path / "gpu-state.sqlite"
    alloc = GpuAllocator(parse_inventory("none"), state_path=state, clock=lambda: now[0])
    assert alloc.allocate("ann").profile == "cpu"
    now[0] += 1800
    alloc.release("ann")
    alloc.allocate("bob", want=0)  # asked for the CPU profile; still running
    out = tmp_path / "usage.csv"
    assert main(["hub", "--data", str(tmp_path), "--export-usage", str(out)]) == 0
    assert "of 2 user(s)" in capsys.readouterr().out
    rows = {r["user"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"ann", "bob"}
    assert rows["ann"]["sessions"] == "1" and rows["ann"]["open_sessions"] == "0"
    assert float(rows["ann"]["server_hours"]) == pytest.approx(0.5)
    assert float(rows["ann"]["gpu_hours"]) == 0.0
    assert rows["bob"]["open_sessions"] == "1"


@pytest.mark.parametrize("bad", ["students", "=3", "g=x"])
def test_bad_quota(bad, capsys):
    with pytest.raises(SystemExit):
        main(["hub", "--group-quota", bad, "--print-config"])

"""The GPU pool without a hub: inventory, policy, atomic persistent allocation, accounting."""

from __future__ import annotations

import csv
import multiprocessing
import sys
import types

import pytest

from medai_lab.hub import memory
from medai_lab.hub.accounting import usage_by_user, write_usage_csv
from medai_lab.hub.allocator import GpuAllocator
from medai_lab.hub.command import _redact
from medai_lab.hub.environment import gpu_env
from medai_lab.hub.inventory import GpuDevice, InventoryError, parse_inventory
from medai_lab.hub.policy import Policy


def test_parse_inventory():
    devs = parse_inventory("0, 1,MIG-4f2a1c3e-aaaa-bbbb-cccc-0123456789ab,2:4,3:2@0.4")
    assert [d.id for d in devs[:3]] == ["0", "1", "MIG-4f2a1c3e-aaaa-bbbb-cccc-0123456789ab"]
    assert [d.kind for d in devs] == ["gpu", "gpu", "mig"] + ["share"] * 6
    assert [d.id for d in devs[3:7]] == ["2#0", "2#1", "2#2", "2#3"]
    assert {d.visible for d in devs[3:7]} == {"2"} and devs[3].memory_fraction == 0.25
    assert devs[-1].memory_fraction == 0.4 and devs[-1].gpu_fraction == 0.4
    assert parse_inventory("none") == [] and parse_inventory("") == []
    assert GpuDevice.from_dict(devs[4].to_dict()) == devs[4]
    for bad in ("gpu0", "0,0", "0:0", "0:2@1.5"):
        with pytest.raises(InventoryError):
            parse_inventory(bad)


def test_auto_without_nvml_is_empty():
    # no NVIDIA driver on CI machines: NVML discovery fails soft to an empty pool
    assert isinstance(parse_inventory("auto"), list)


def test_allocate_release_and_cpu_message(tmp_path):
    alloc = GpuAllocator(parse_inventory("0,1"), state_path=tmp_path / "s.sqlite")
    a, b, c = (alloc.allocate(u) for u in ("a", "b", "c"))
    assert [d.id for d in a.devices + b.devices] == ["0", "1"]
    assert c.profile == "cpu" and "all 2 GPU unit(s) of this hub are in use" in c.message
    assert alloc.allocate("a").devices == a.devices  # idempotent for the same server
    assert alloc.release("b") == ["1"] and alloc.release("b") == []
    assert [d.id for d in alloc.allocate("c").devices] == ["1"]
    assert alloc.allocate("d", want=0).message == ""  # asked for CPU
    # another allocator on the same state file (a restarted hub) sees the same holdings
    again = GpuAllocator(parse_inventory("0,1"), state_path=tmp_path / "s.sqlite")
    assert again.holdings() == {"0": ("a", ""), "1": ("c", "")}
    assert again.free() == []


def test_policy_user_cap_and_group_quotas(tmp_path):
    policy = Policy(gpus_per_server=1, max_per_user=1, group_quotas={"students": 2, "*": 1})
    alloc = GpuAllocator(parse_inventory("0,1,2,3"), policy, tmp_path / "s.sqlite")
    assert alloc.allocate("ann", "one", ["students"]).devices
    second = alloc.allocate("ann", "two", ["students"])
    assert not second.devices and "most one user may hold is 1" in second.message
    assert alloc.allocate("ben", "", ["students"]).devices
    full = alloc.allocate("cat", "", ["students"])
    assert not full.devices and "quota of group 'students' is used up (2 of 2" in full.message
    assert alloc.allocate("dan").devices  # '*' quota: users in no group
    other = alloc.allocate("eve")
    assert not other.devices and "users in no group" in other.message
    # a user in two groups is charged to the one with room
    policy2 = Policy(group_quotas={"students": 0, "staff": 1})
    alloc2 = GpuAllocator(parse_inventory("0,1"), policy2, tmp_path / "t.sqlite")
    assert alloc2.allocate("tutor", "", ["students", "staff"]).devices


def test_multi_gpu_servers_spread_over_physical_gpus(tmp_path):
    alloc = GpuAllocator(parse_inventory("0:2,1:2"), Policy(2, 2), tmp_path / "s.sqlite")
    first = alloc.allocate("a")
    assert {d.parent for d in first.devices} == {"0", "1"}
    env = gpu_env(first)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["MEDAI_GPU_MEMORY_FRACTION"] == "0.5"
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


def test_gpu_env_whole_and_cpu(tmp_path):
    alloc = GpuAllocator(parse_inventory("MIG-aa"), state_path=tmp_path / "s.sqlite")
    env = gpu_env(alloc.allocate("a"))
    assert env["CUDA_VISIBLE_DEVICES"] == env["NVIDIA_VISIBLE_DEVICES"] == "MIG-aa"
    assert "MEDAI_GPU_MEMORY_FRACTION" not in env and env["MEDAI_GPU_PROFILE"] == "gpu"
    cpu = gpu_env(alloc.allocate("b"))
    assert cpu["CUDA_VISIBLE_DEVICES"] == "-1" and cpu["MEDAI_GPU_PROFILE"] == "cpu"
    assert "in use" in cpu["MEDAI_GPU_MESSAGE"]


def _grab(args: tuple[str, str, int]) -> list[str]:
    state, user, n = args
    alloc = GpuAllocator(parse_inventory("0,1,2,3"), state_path=state)
    return [d.id for i in range(n) for d in alloc.allocate(user, f"s{i}").devices]


def test_concurrent_processes_never_share_a_unit(tmp_path):
    state = str(tmp_path / "s.sqlite")
    GpuAllocator(parse_inventory("0,1,2,3"), Policy(1, 8), state)  # create the schema
    jobs = [(state, f"user{i}", 1) for i in range(10)]
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(5) as pool:
        got = [d for ids in pool.map(_grab, jobs) for d in ids]
    assert sorted(got) == ["0", "1", "2", "3"]
    alloc = GpuAllocator(parse_inventory("0,1,2,3"), state_path=state)
    assert len(alloc.holdings()) == 4
    for i in range(10):
        alloc.release(f"user{i}", "s0")
    assert alloc.holdings() == {}


def test_reconcile_frees_dead_servers(tmp_path):
    alloc = GpuAllocator(parse_inventory("0,1"), state_path=tmp_path / "s.sqlite")
    alloc.allocate("live")
    alloc.set_pid("live", "", 1234)
    alloc.allocate("dead")
    alloc.set_pid("dead", "", 999999)
    assert alloc.reconcile(alive=lambda pid: pid == 1234) == [("dead", "")]
    assert list(alloc.holdings().values()) == [("live", "")]


def test_gpu_hours_csv(tmp_path):
    now = [1_000_000.0]
    devices = parse_inventory("0,1:2")
    alloc = GpuAllocator(devices, Policy(1, 2), tmp_path / "s.sqlite", clock=lambda: now[0])
    alloc.allocate("whole")  # GPU 0
    alloc.allocate("shared", "a")  # a share of GPU 1 (least-loaded physical GPU first)
    now[0] += 7200
    alloc.release("whole")
    now[0] += 3600
    rows = {u.user: u for u in usage_by_user(tmp_path / "s.sqlite", until=now[0])}
    assert rows["whole"].gpu_hours == pytest.approx(2.0) and rows["whole"].open_sessions == 0
    assert rows["shared"].unit_hours == pytest.approx(3.0)
    assert rows["shared"].gpu_hours == pytest.approx(1.5) and rows["shared"].open_sessions == 1
    out = tmp_path / "usage.csv"
    write_usage_csv(tmp_path / "s.sqlite", out, until=now[0])
    table = list(csv.DictReader(out.open()))
    assert [r["user"] for r in table] == ["whole", "shared"]
    assert table[0]["gpu_hours"] == "2.0000" and table[1]["open_sessions"] == "1"


def test_memory_cap_hook(monkeypatch):
    calls = []
    cuda = types.SimpleNamespace(
        is_initialized=lambda: True,
        is_available=lambda: True,
        device_count=lambda: 2,
        set_per_process_memory_fraction=lambda f, i: calls.append((f, i)),
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(memory, "_applied", {})
    assert memory.install({"MEDAI_GPU_MEMORY_FRACTION": "0.25"}) == 0.25
    assert calls == [(0.25, 0), (0.25, 1)]
    assert memory.install({"MEDAI_GPU_MEMORY_FRACTION": "0"}) is None
    assert memory.install({}) is None
    queued = []
    cuda.is_initialized = lambda: False
    cuda._lazy_call = queued.append  # CUDA not initialised yet: applied when it is
    monkeypatch.setattr(memory, "_applied", {})
    memory.install({"MEDAI_GPU_MEMORY_FRACTION": "0.5"})
    assert len(queued) == 1
    queued[0]()
    assert calls[-2:] == [(0.5, 0), (0.5, 1)]


def test_memory_hook_waits_for_torch_import(monkeypatch):
    from medai_lab import cpushare

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(cpushare, "_after", {})
    before = list(sys.meta_path)
    try:
        assert memory.install({"MEDAI_GPU_MEMORY_FRACTION": "0.3"}) == 0.3
        assert "gpu-memory-cap" in cpushare.pending_after_import("torch")
        assert "torch" not in sys.modules  # nothing imported by installing the hook
    finally:
        sys.meta_path[:] = before


def test_redact():
    assert _redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert _redact("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"

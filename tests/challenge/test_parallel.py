"""Parallel evaluation: fair claims under leases, CPU slots, exactly-once scoring after kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from challenge_helpers import HONEST, sandbox_processes, spec_dict, write_package

from medai_lab.challenge import Challenge, claims
from medai_lab.challenge.slots import SlotPool, cpu_sets

SLEEPY = """
    import time
    import numpy as np

    def predict(image, affine, context):
        time.sleep(1.5)
        return (image > 40).astype(np.uint8)
"""


def _package(tmp_path: Path, name: str, code: str = HONEST) -> Path:
    return write_package(tmp_path / "pkgs" / name, code + f"    # {name}\n")


def _queue(ch: Challenge, tmp_path: Path, plan: dict[str, int]) -> dict[int, str]:
    ids = {}
    for team, n in plan.items():
        for k in range(n):
            row = ch.submit(_package(tmp_path, f"{team}{k}"), team=team)
            ids[int(row["id"])] = team
    return ids


def _bound(check: Callable[[], Any], seconds: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_claims_round_robin_oldest_first_and_team_limit(make_challenge, tmp_path):
    ch = make_challenge()
    ids = _queue(ch, tmp_path, {"owls": 3, "bats": 2, "cats": 1})
    lease = claims.new_lease()
    held = [claims.claim(ch.store, lease) for _ in range(4)]
    # one running submission per team: three claims, then nothing eligible
    assert [r["team"] for r in held[:3]] == ["owls", "bats", "cats"]
    assert held[3] is None
    assert all(r["id"] == min(i for i, t in ids.items() if t == r["team"]) for r in held[:3])
    for r in held[:3]:
        assert claims.finish(ch.store, r["id"], lease, "error")
    order = []
    while (row := claims.claim(ch.store, lease, team_limit=2)) is not None:
        order.append(row["team"])
    assert order == ["owls", "bats", "owls"]  # turns alternate; cats has nothing left


def test_a_lost_lease_cannot_write(make_challenge, tmp_path):
    ch = make_challenge()
    _queue(ch, tmp_path, {"owls": 1})
    old, new = claims.new_lease(), claims.new_lease()
    row = claims.claim(ch.store, old)
    # a live evaluator's fresh lease is not stale; forcing it hands the submission on
    assert claims.requeue_stale(ch.store) == []
    assert claims.requeue_stale(ch.store, every=True) == [row["id"]]
    assert claims.claim(ch.store, new)["id"] == row["id"]
    assert not claims.finish(ch.store, row["id"], old, "scored")
    assert claims.finish(ch.store, row["id"], new, "error")
    assert ch.store.get(row["id"])["status"] == "error"


def test_a_dead_evaluators_lease_is_stale(make_challenge, tmp_path):
    ch = make_challenge()
    _queue(ch, tmp_path, {"owls": 1})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lease = claims.new_lease().split(":")
    row = claims.claim(ch.store, f"{lease[0]}:{gone.pid}:{lease[2]}")
    assert claims.requeue_stale(ch.store) == [row["id"]]
    assert ch.store.get(row["id"])["status"] == "queued"


def test_cpu_slots_are_disjoint_when_cores_allow():
    cores = len(os.sched_getaffinity(0))
    sets = cpu_sets(cores, 1)
    assert len({s for s, _ in sets}) == cores and not any(shared for _, shared in sets)
    assert all(shared for _, shared in cpu_sets(cores + 1, 1))
    pool = SlotPool(2, 1)
    a, b = pool.acquire(), pool.acquire()
    assert a.environment()["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" in a.environment()  # no GPU requested: none visible
    pool.release(a)
    pool.release(b)


def test_two_workers_score_every_submission_once(make_challenge, tmp_path):
    ch = make_challenge(team_concurrency=2)
    ids = _queue(ch, tmp_path, {"owls": 2, "bats": 2})
    done = ch.evaluate(workers=2, track=False)
    assert sorted(r["id"] for r in done) == sorted(ids)
    assert all(r["status"] == "scored" for r in done)
    with sqlite3.connect(ch.root / "challenge.db") as con:
        per_sub = dict(con.execute("SELECT submission_id, COUNT(*) FROM scores GROUP BY 1"))
    assert per_sub == dict.fromkeys(ids, 1)
    assert ch.evaluate(workers=2, track=False) == []  # nothing left, nothing scored twice


def test_kill_9_mid_case_resumes_without_loss_or_double_score(
    make_challenge, tmp_path, tmp_path_factory
):
    ch = make_challenge()
    sid = int(ch.submit(_package(tmp_path, "sleepy", SLEEPY), team="owls")["id"])
    exe = Path(sys.executable).with_name("medai-lab")
    proc = subprocess.Popen(
        [str(exe), "challenge", "evaluate", str(ch.root), "--no-track"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = tmp_path_factory.getbasetemp()
    try:
        _bound(lambda: ch.store.get(sid)["status"] == "running" and sandbox_processes(base))
        time.sleep(1.0)  # inside the first case (each takes 1.5 s)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert ch.store.get(sid)["status"] == "running"
    _bound(lambda: not sandbox_processes(base), 20)  # the sandbox died with its evaluator
    done = ch.evaluate(track=False)
    assert [r["id"] for r in done] == [sid] and done[0]["status"] == "scored"
    assert done[0]["score"]["n_failed"] == 0
    with sqlite3.connect(ch.root / "challenge.db") as con:
        assert con.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 1
    assert list(ch.leaderboard("validation")["submission"]) == [sid]


def test_workers_must_be_positive(make_challenge):
    from medai_lab.challenge import ChallengeError

    with pytest.raises(ChallengeError, match="--workers"):
        make_challenge().evaluate(workers=0, track=False)


def test_spec_rejects_feedback_on_a_visible_phase(phases):
    from medai_lab.challenge import SpecError, parse_spec

    raw = spec_dict(phases)
    raw["phases"]["validation"]["feedback"] = {"precision": 2}
    with pytest.raises(SpecError, match="hidden phases only"):
        parse_spec(raw)


def test_gpu_units_come_from_the_hub_pool_and_go_back(make_challenge, tmp_path):
    """A declared pool (no GPU needed): slots get the hub's units, shares get a memory cap."""
    from medai_lab.hub.allocator import GpuAllocator
    from medai_lab.hub.inventory import parse_inventory
    from medai_lab.hub.policy import Policy

    alloc = GpuAllocator(parse_inventory("0:2,MIG-1a2b"), Policy(max_per_user=3), tmp_path / "s")
    alloc.allocate("alice")  # a user server holds one unit: the evaluator never gets it
    pool = SlotPool(3, 1, gpu=True, allocator=alloc)
    slots = [pool.acquire() for _ in range(3)]
    got = sorted((s.gpu_kind, s.memory_fraction) for s in slots)
    assert got == [("", None), ("mig", None), ("share", 0.5)]  # the third found none free
    share = next(s for s in slots if s.gpu_kind == "share")
    assert share.environment()["CUDA_VISIBLE_DEVICES"] == "0"
    assert share.environment()["MEDAI_GPU_MEMORY_FRACTION"] == "0.5"
    assert "gpu=none_free" in next(s for s in slots if not s.gpu_kind).notes
    for s in slots:
        pool.release(s)
    assert set(alloc.holdings().values()) == {("alice", "")}

    ch = make_challenge(gpu=True)
    _queue(ch, tmp_path, {"owls": 1})
    alloc.release("alice")
    (res,) = ch.evaluate(track=False, gpu_pool=alloc)
    assert res["status"] == "scored" and res["score"]["n_failed"] == 0
    assert "gpu=share" in res["notes"] and "gpu_memory=capped" in res["notes"]
    assert alloc.holdings() == {}

"""medai_lab.cpushare: the CPU share of a process from its affinity and cgroup, thread limits.

Real processes with a real affinity mask (and, where the tests may write cgroups, a real cgroup
quota and memory limit made by medai_lab.hub.limits) ask cpushare what they have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medai_lab import cpushare
from medai_lab.hub import limits
from medai_lab.hub.resources import Share, parse_size

PROBE = (
    "import json, os; from medai_lab import cpushare; "
    "n = cpushare.apply_thread_limits(); import torch; "
    "print(json.dumps({**cpushare.summary(), 'applied': n, 'torch': torch.get_num_threads(), "
    "'omp': os.environ['OMP_NUM_THREADS'], 'workers': cpushare.dataloader_workers(4)}))"
)


def _probe(preexec=None, env: dict[str, str] | None = None) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in (*cpushare.THREAD_VARS, "MEDAI_CPUS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **(env or {})}, preexec_fn=preexec,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_affinity_mask_is_the_share():
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("one core: no smaller affinity mask to give")
    seen = _probe(lambda: os.sched_setaffinity(0, {cores[-1]}))
    assert seen["affinity"] == 1 and seen["threads"] == 1 and seen["applied"] == 1
    assert seen["omp"] == "1" and seen["torch"] == 1 and seen["workers"] == 0
    assert seen["machine_cpus"] == os.cpu_count()  # what os.cpu_count() would have wrongly used


def test_medai_cpus_overrides_and_user_threads_win():
    seen = _probe(env={"MEDAI_CPUS": "1.5"})
    assert seen["threads"] == 2 and seen["applied"] == 2 and seen["omp"] == "2"
    mine = _probe(env={"OMP_NUM_THREADS": "1"})  # a user's own setting is kept
    assert mine["omp"] == "1" and mine["torch"] == 1


def test_apply_thread_limits_sets_every_library_variable():
    env: dict[str, str] = {"MKL_NUM_THREADS": "7"}
    n = cpushare.apply_thread_limits(3, torch=False, environ=env)
    assert n == 3 and env["MKL_NUM_THREADS"] == "7"
    assert all(env[v] == "3" for v in cpushare.THREAD_VARS if v != "MKL_NUM_THREADS")
    cpushare.apply_thread_limits(2, torch=False, override=True, environ=env)
    assert {env[v] for v in cpushare.THREAD_VARS} == {"2"} and env["MEDAI_CPUS"] == "2"


def test_onnx_session_threads_follow_the_share(monkeypatch):
    monkeypatch.setenv("MEDAI_CPUS", "1")
    opts = cpushare.onnx_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1


def test_cgroup_quota_and_memory_limit_are_read():
    backend = limits.detect("auto")
    if not backend.startswith("cgroup"):
        pytest.skip(f"no writable cgroup hierarchy here ({backend}): run as root")
    share = Share(0.5, parse_size("300M"))
    placement = limits.place(f"test-cpushare-{os.getpid()}", share, backend, pin=False)
    try:
        seen = _probe(limits.child_setup(placement))
    finally:
        limits.release(placement)
    assert seen["cpu_quota"] == 0.5 and seen["threads"] == 1 and seen["torch"] == 1
    assert seen["memory_limit"] == share.memory and seen["oom_kills"] == 0
    assert not any(os.path.exists(f) for f in placement.folders)
    assert cpushare.cgroup_cpu_quota() != 0.5  # this process was never inside it


def test_oom_message_names_the_share():
    text = cpushare.oom_message(2, 2 * 1024**3)
    assert "2 process(es)" in text and "memory share (2.0 GiB)" in text


def test_doctor_shows_the_share_it_runs_in():
    backend = limits.detect("auto")
    if not backend.startswith("cgroup"):
        pytest.skip(f"no writable cgroup hierarchy here ({backend}): run as root")
    placement = limits.place(f"test-doctor-{os.getpid()}", Share(0.5, parse_size("300M")), backend)
    exe = os.path.join(os.path.dirname(sys.executable), "medai-lab")
    # the share must come from the cgroup, not from variables an earlier in-process test (the
    # kernel extension, a caller of apply_thread_limits) left in this process's environment
    scrub = {*cpushare.THREAD_VARS, cpushare.ENV_CPUS}
    env = {k: v for k, v in os.environ.items() if k not in scrub}
    try:
        out = subprocess.run(
            [exe, "doctor"], preexec_fn=limits.child_setup(placement), capture_output=True,
            text=True, timeout=180, env=env,
        ).stdout  # fmt: skip
    finally:
        limits.release(placement)
    line = next(x for x in out.splitlines() if "cpu/memory" in x)
    assert "1 CPU(s) for this process" in line and "cgroup quota 0.5" in line
    assert "memory share 0.3 GiB (cgroup limit)" in line


def test_every_caller_waiting_for_an_import_runs(tmp_path, monkeypatch):
    """Thread limits and the GPU memory cap both wait for torch: one hook must run both (two
    hooks for one module shadow each other). A stand-in module on sys.path plays torch."""
    (tmp_path / "fake_torch_for_hooks.py").write_text("loaded = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cpushare, "_after", {})
    before = list(sys.meta_path)
    ran: list[str] = []
    try:
        cpushare.after_import("fake_torch_for_hooks", "threads", lambda m: ran.append("threads"))
        cpushare.after_import("fake_torch_for_hooks", "cap", lambda m: ran.append("cap"))
        cpushare.after_import("fake_torch_for_hooks", "cap", lambda m: ran.append("cap2"))
        assert ran == [] and "fake_torch_for_hooks" not in sys.modules
        import fake_torch_for_hooks  # noqa: F401

        assert sorted(ran) == ["cap2", "threads"]
        assert cpushare.pending_after_import("fake_torch_for_hooks") == ()
        cpushare.after_import("fake_torch_for_hooks", "late", lambda m: ran.append("late"))
        assert ran[-1] == "late"  # already imported: runs at once
    finally:
        sys.meta_path[:] = before
        sys.modules.pop("fake_torch_for_hooks", None)

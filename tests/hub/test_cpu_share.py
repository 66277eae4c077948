"""CPU/memory shares in a real JupyterHub: two servers capped, thread variables, an OOM kill.

The shares are enforced with cgroups where the tests run as root (v1 or v2, whichever this
machine has writable), else by CPU affinity only; the test asserts what the backend in use
promises and names the backend in its assertion messages.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import requests

from medai_lab.cpushare import THREAD_VARS
from medai_lab.hub import limits
from medai_lab.hub.resources import ResourcePolicy, Share, parse_size

from .hubctl import Hub, proc_environ, wait_for
from .kernel import _execute, run_in_kernel

MEMORY = parse_size("600M")


def _cores(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/status").read_text()
    spec = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("Cpus_allowed_list"))  # fmt: skip
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _oom_in_kernel(hub: Hub, user: str, token: str) -> None:
    """Start a kernel in ``user``'s server and make it use more memory than the share."""
    base = f"{hub.url}/user/{user}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    r = requests.post(base, headers=headers, json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text
    ws_url = f"{base}/{r.json()['id']}/channels".replace("http://", "ws://", 1)
    code = "blocks = [b'x' * (64 << 20) for _ in range(40)]"  # 2.5 GiB, touched page by page
    with pytest.raises((AssertionError, TimeoutError, OSError)):
        asyncio.run(asyncio.wait_for(_execute(ws_url, token, code, user), 60))


def test_two_servers_get_their_shares(make_hub):
    cpus = 1.0 if len(os.sched_getaffinity(0)) >= 2 else 0.5
    backend = limits.detect("auto")
    policy = ResourcePolicy(cpus_per_server=cpus, memory_per_server=MEMORY)
    hub = make_hub(resources=policy.to_dict(), limits=backend)
    hub.create_users(["alice", "bob"])
    pids = {}
    for name in ("alice", "bob"):
        hub.start_server(name)
        pids[name] = int(hub.wait_ready(name)["state"]["pid"])
    threads = Share(cpus, MEMORY).threads
    for name, pid in pids.items():
        env = proc_environ(pid)
        assert {v: env.get(v) for v in THREAD_VARS} == dict.fromkeys(THREAD_VARS, str(threads))
        assert env["MEDAI_CPUS"] == str(threads) and env["MEDAI_MEMORY_LIMIT"] == str(MEMORY)
        assert float(env["CPU_LIMIT"]) == cpus and int(env["MEM_LIMIT"]) == MEMORY
        assert len(_cores(pid)) == threads, f"{name} not pinned ({backend})"
    if cpus == 1.0:
        assert _cores(pids["alice"]).isdisjoint(_cores(pids["bob"])), "servers share a core"

    tokens = {n: hub.user_token(n) for n in pids}
    probe = (
        "from medai_lab import cpushare; import torch; s = cpushare.summary(); "
        "print(s['threads'], s['cpu_quota'], s['memory_limit'], torch.get_num_threads())"
    )
    seen = run_in_kernel(hub.url, "bob", tokens["bob"], probe).split()
    assert seen[0] == str(threads) and seen[3] == str(threads), seen
    if backend.startswith("cgroup"):
        assert float(seen[1]) == cpus and int(seen[2]) == MEMORY, seen
        group = Path(f"/proc/{pids['alice']}/cgroup").read_text()
        assert f"{limits.PARENT}/alice" in group

        # alice's kernel goes over her memory share: the kernel is killed, her server and
        # bob's are not, and her next kernel says why
        _oom_in_kernel(hub, "alice", tokens["alice"])
        placement = hub_placement(hub, "alice")
        wait_for("the OOM kill in alice's cgroup", lambda: limits.oom_kills(placement) > 0, 60)
        assert hub.server("alice") is not None and os.path.exists(f"/proc/{pids['alice']}")
        after = run_in_kernel(hub.url, "bob", tokens["bob"], "print(6 * 7)")
        assert after.strip() == "42"
        # the kernel extension told the new kernel at its start (and noted the count) ...
        seen = hub.settings.data / "homes" / "alice" / ".medai-lab" / "oom_seen"
        before = run_in_kernel(hub.url, "alice", tokens["alice"], "print('started')")
        assert before.strip() == "started"
        assert int(seen.read_text().split()[-1]) >= 1
        # ... and what it says (asked again with a fresh record of kills seen)
        code = (
            "import tempfile, pathlib; from medai_lab.kernel.share import oom_notice; "
            "print(oom_notice(pathlib.Path(tempfile.mkdtemp()) / 'seen'))"
        )
        notice = run_in_kernel(hub.url, "alice", tokens["alice"], code)
        assert "out-of-memory killer" in notice and "memory share (0.6 GiB)" in notice
    else:  # no cgroups here: the memory share is only a hint, the CPU share is the affinity
        assert seen[1] == "None"

    folders = hub_placement(hub, "alice").folders
    for name in pids:
        hub.stop_server(name)
    assert not any(Path(f).exists() for f in folders), "cgroups left after the server stopped"


def hub_placement(hub: Hub, user: str) -> limits.Placement:
    state = hub.wait_ready(user)["state"]["medai_share"]
    return limits.Placement.from_dict(state["placement"])


def test_per_user_cap_refuses_a_second_server(make_hub):
    policy = ResourcePolicy(cpus_per_server=0.5, max_cpus_per_user=0.5)
    hub = make_hub(resources=policy.to_dict(), limits="none",
                   config_lines=("c.JupyterHub.allow_named_servers = True",))  # fmt: skip
    hub.create_users(["carol"])
    hub.start_server("carol")
    hub.wait_ready("carol")
    r = hub.post("/users/carol/servers/second")
    if r.status_code == 202:  # pending: the refusal lands while it starts
        wait_for("the refusal", lambda: "second" not in hub.get("/users/carol").json()["servers"]
                 and not hub.get("/users/carol").json().get("pending"), 60)  # fmt: skip
    assert "your other servers already use your 0.5 CPU(s)" in hub.log_tail(200)
    hub.stop_server("carol")


def test_jupyterhubs_own_cpu_limit_is_enforced_and_matched(make_hub):
    """No share policy, but ``c.Spawner.cpu_limit`` in the config: enforced and threads match."""
    hub = make_hub(limits="affinity", config_lines=("c.Spawner.cpu_limit = 0.5",))
    hub.create_users(["dora"])
    hub.start_server("dora")
    pid = int(hub.wait_ready("dora")["state"]["pid"])
    env = proc_environ(pid)
    assert env["OMP_NUM_THREADS"] == env["MEDAI_CPUS"] == "1" and env["CPU_LIMIT"] == "0.5"
    if len(os.sched_getaffinity(0)) >= 2:
        assert len(_cores(pid)) == 1
    hub.stop_server("dora")


def test_a_restarted_hub_keeps_the_share_and_cleans_up(make_hub):
    backend = limits.detect("auto")
    policy = ResourcePolicy(cpus_per_server=0.5, memory_per_server=MEMORY)
    hub = make_hub(resources=policy.to_dict(), limits=backend)
    hub.create_users(["emma"])
    hub.start_server("emma")
    pid = int(hub.wait_ready("emma")["state"]["pid"])
    placement = hub_placement(hub, "emma")
    again = make_hub(after_crash_of=hub)  # SIGKILL: the server and its cgroup stay
    assert hub_placement(again, "emma") == placement
    if backend.startswith("cgroup"):
        assert f"{limits.PARENT}/emma" in Path(f"/proc/{pid}/cgroup").read_text()
    again.stop_server("emma")
    assert not any(Path(f).exists() for f in placement.folders)

"""GPU allocation in a real JupyterHub: sign-up/sign-in, distinct GPUs, CPU fallback, release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from medai_lab.hub.accounting import usage_by_user

from .conftest import held_by, wait_released
from .hubctl import Hub, proc_environ, sign_up_and_in


def server_env(hub: Hub, name: str) -> dict[str, str]:
    model = hub.wait_ready(name)
    return proc_environ(int(model["state"]["pid"]))


def test_three_users_two_gpus(make_hub):
    hub = make_hub(gpus="0,1")
    tokens = {name: sign_up_and_in(hub, name)[1] for name in ("alice", "bob", "carol")}
    # a user's own token may start their own server, not someone else's
    r = hub.post("/users/bob/server", token=tokens["alice"])
    assert r.status_code in (403, 404)

    envs = {}
    for name in ("alice", "bob", "carol"):
        hub.start_server(name, token=tokens[name])
        envs[name] = server_env(hub, name)

    gpu_users = [n for n in envs if envs[n]["MEDAI_GPU_PROFILE"] == "gpu"]
    assert gpu_users == ["alice", "bob"]
    visible = {envs[n]["CUDA_VISIBLE_DEVICES"] for n in gpu_users}
    assert visible == {"0", "1"}
    for n in gpu_users:
        assert envs[n]["NVIDIA_VISIBLE_DEVICES"] == envs[n]["CUDA_VISIBLE_DEVICES"]
        assert "MEDAI_GPU_MESSAGE" not in envs[n]
    carol = envs["carol"]
    assert carol["MEDAI_GPU_PROFILE"] == "cpu"
    assert carol["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "all 2 GPU unit(s) of this hub are in use" in carol["MEDAI_GPU_MESSAGE"]
    assert "CPU-only profile" in carol["MEDAI_GPU_MESSAGE"]
    # the message is in the server state the hub keeps (admin API) too
    state = hub.server("carol")["state"]["medai_gpu"]
    assert state["profile"] == "cpu" and "in use" in state["message"]
    held = held_by(hub)
    assert sorted(held) == ["0", "1"] and {u for u, _ in held.values()} == {"alice", "bob"}

    # stopping bob's server frees his GPU; carol gets it on her next start
    bobs = envs["bob"]["CUDA_VISIBLE_DEVICES"]
    hub.stop_server("bob")
    wait_released(hub, "bob")
    hub.stop_server("carol")
    hub.start_server("carol", token=tokens["carol"])
    again = server_env(hub, "carol")
    assert again["MEDAI_GPU_PROFILE"] == "gpu" and again["CUDA_VISIBLE_DEVICES"] == bobs
    assert "MEDAI_GPU_MESSAGE" not in again

    # a user may ask for the CPU profile (spawn form / API options): no GPU, no complaint
    hub.stop_server("alice")
    hub.start_server("alice", token=tokens["alice"], profile="cpu")
    cpu = server_env(hub, "alice")
    assert cpu["MEDAI_GPU_PROFILE"] == "cpu" and cpu["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "MEDAI_GPU_MESSAGE" not in cpu
    for name in ("alice", "carol"):
        hub.stop_server(name)
    assert held_by(hub) == {}
    usage = {u.user: u for u in usage_by_user(hub.settings.data / "gpu-state.sqlite")}
    assert set(usage) == {"alice", "bob", "carol"}
    assert all(u.open_sessions == 0 and u.gpu_hours > 0 for u in usage.values())


def test_ten_concurrent_spawns_four_gpus(make_hub):
    hub = make_hub(gpus="0,1,2,3")
    names = [f"user{i:02d}" for i in range(10)]
    hub.create_users(names)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(hub.start_server, names))
        models = dict(zip(names, pool.map(lambda n: hub.wait_ready(n, 180), names), strict=True))
    envs = {n: proc_environ(int(m["state"]["pid"])) for n, m in models.items()}
    gpu = {n: e["CUDA_VISIBLE_DEVICES"] for n, e in envs.items() if e["MEDAI_GPU_PROFILE"] == "gpu"}
    cpu = [n for n, e in envs.items() if e["MEDAI_GPU_PROFILE"] == "cpu"]
    assert len(gpu) == 4 and len(cpu) == 6, envs
    assert sorted(gpu.values()) == ["0", "1", "2", "3"], "a GPU was handed out twice"
    assert all(envs[n]["CUDA_VISIBLE_DEVICES"] == "-1" for n in cpu)
    held = held_by(hub)
    assert {d: u for d, (u, _) in held.items()} == {v: k for k, v in gpu.items()}

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(hub.stop_server, names))
    assert held_by(hub) == {}
    usage = {u.user: u for u in usage_by_user(hub.settings.data / "gpu-state.sqlite")}
    assert set(usage) == set(names), "every server session is accounted, CPU ones too"
    assert all(u.sessions == 1 and u.open_sessions == 0 for u in usage.values())
    assert {n for n, u in usage.items() if u.gpu_hours > 0} == set(gpu)


def test_hub_crash_keeps_allocations(make_hub):
    hub = make_hub(gpus="0,1")
    hub.create_users(["ann", "ben"])
    hub.start_server("ann")
    ann_pid = int(hub.wait_ready("ann")["state"]["pid"])
    ann_gpu = proc_environ(ann_pid)["CUDA_VISIBLE_DEVICES"]
    # the hub dies (SIGKILL: no cleanup); ann's server keeps running and keeps its GPU
    again = make_hub(after_crash_of=hub)
    assert proc_environ(ann_pid)["CUDA_VISIBLE_DEVICES"] == ann_gpu
    assert again.wait_ready("ann")["state"]["medai_gpu"]["devices"] == [ann_gpu]
    assert held_by(again) == {ann_gpu: ("ann", "")}
    again.start_server("ben")
    ben = server_env(again, "ben")
    assert ben["MEDAI_GPU_PROFILE"] == "gpu" and ben["CUDA_VISIBLE_DEVICES"] != ann_gpu
    again.stop_server("ann")
    assert list(held_by(again).values()) == [("ben", "")]

"""jupyterhub-idle-culler as a hub-managed service: an idle server is stopped, its GPU freed."""

from __future__ import annotations

import time

from medai_lab.hub.accounting import usage_by_user

from .conftest import held_by
from .hubctl import proc_environ, wait_for


def test_idle_server_is_culled_and_gpu_freed(make_hub):
    hub = make_hub(gpus="0", cull_timeout=8, cull_every=2)
    hub.create_users(["idle", "next"])
    hub.start_server("idle")
    env = proc_environ(int(hub.wait_ready("idle")["state"]["pid"]))
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert held_by(hub) == {"0": ("idle", "")}

    start = time.monotonic()
    wait_for("the culler to stop the idle server", lambda: hub.server("idle") is None, 90, 0.5)
    assert time.monotonic() - start < 60
    wait_for("the GPU to be free", lambda: held_by(hub) == {}, 30)
    usage = {u.user: u for u in usage_by_user(hub.settings.data / "gpu-state.sqlite")}
    assert usage["idle"].open_sessions == 0 and usage["idle"].sessions == 1
    # the next user gets the freed GPU
    hub.start_server("next")
    env = proc_environ(int(hub.wait_ready("next")["state"]["pid"]))
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["MEDAI_GPU_PROFILE"] == "gpu"

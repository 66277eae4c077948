"""Stopping the hub: SIGTERM ends hub, proxy, services and servers quickly, with no traceback."""

from __future__ import annotations

import requests

from .hubctl import _alive, wait_for

# The authenticating proxy gives MLflow 5 s (its launcher spends seconds tearing its interpreter
# down after the server has stopped); the rest is JupyterHub's own clean-up. JupyterHub 6 took
# 10-33 s here, stopping services one by one with a growing poll interval.
SHUTDOWN_S = 8.0


def test_sigterm_stops_everything_quickly_and_quietly(make_hub):
    # A service health check every second: JupyterHub 6 ran it while it tore services down and
    # logged "AttributeError: 'NoneType' object has no attribute 'proto'".
    hub = make_hub(
        mlflow=True, cull_timeout=3600, config_lines=("c.JupyterHub.service_check_interval = 1",)
    )
    hub.create_users(["ann"])
    token = hub.user_token("ann")
    hub.start_server("ann", token=token)
    server_pid = int(hub.wait_ready("ann")["state"]["pid"])
    health = f"{hub.settings.mlflow_uri}/health"

    def mlflow_up() -> bool:
        r = requests.get(health, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return r.status_code == 200

    wait_for("the MLflow service", mlflow_up, 240, every=1.0)
    seconds, code = hub.terminate()
    log = hub.log_path.read_text(errors="replace")
    shutdown = log[log.rindex("Received signal SIGTERM") :]
    assert "Traceback" not in shutdown and "Error" not in shutdown, shutdown[-3000:]
    assert code == 0, shutdown[-3000:]
    left = sorted(pid for pid in hub.seen_pids | {server_pid} if _alive(pid))
    assert not left, f"still running after the hub exited: {left}"
    assert seconds < SHUTDOWN_S, f"the hub took {seconds:.1f} s to stop:\n{shutdown[-3000:]}"

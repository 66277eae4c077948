"""Fixtures for the hub tests: real JupyterHub + configurable-http-proxy, real PostgreSQL.

Single-user servers are ``jupyterhub-singleuser`` with ``JUPYTER_NO_CONFIG=1`` (plain
jupyter_server, no JupyterLab extensions), so spawning ten at once stays cheap on two cores.
In CI (``CI=true``) a missing component fails; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testsupport import missing_component  # tests/testsupport.py

from medai_lab.hub.config import proxy_command
from medai_lab.hub.inventory import parse_inventory
from medai_lab.hub.settings import HubSettings, free_port

from .hubctl import Hub, wait_for

PG_BIN = Path(os.environ.get("MEDAI_PG_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture(scope="session")
def hub_components() -> None:
    """JupyterHub, the idle culler, NativeAuthenticator and the pinned proxy must be there."""
    for module in ("jupyterhub", "jupyterhub_idle_culler", "nativeauthenticator"):
        try:
            __import__(module)
        except ImportError:
            missing_component(f"Python package {module} (pip install medai-lab[hub])")
    proxy = proxy_command(HubSettings())[0]
    if not (Path(proxy).exists() or shutil.which(proxy)):
        missing_component("configurable-http-proxy (make install builds medai_lab/hub/proxy)")


@pytest.fixture
def make_hub(tmp_path: Path, hub_components: None) -> Iterator[Callable[..., Hub]]:
    """Start hubs with test defaults (override any HubSettings field); all stopped at the end."""
    hubs: list[Hub] = []

    def make(
        gpus: str = "none",
        *,
        after_crash_of: Hub | None = None,
        config_lines: tuple[str, ...] = (),
        **overrides: Any,
    ) -> Hub:
        if after_crash_of is not None:  # the same hub (settings, data, ports) started again
            hub = Hub(after_crash_of.settings)
            hub.seen_pids |= after_crash_of.crash()
            hubs.append(hub)
            return hub.start()
        data = tmp_path / f"hub{len(hubs)}"
        fields: dict[str, Any] = {
            "data_dir": str(data),
            "port": free_port(),
            "admins": ["admin"],
            "open_signup": True,
            "allow_root": os.geteuid() == 0,
            "gpus": gpus,
            "inventory": [d.to_dict() for d in parse_inventory(gpus)],
            "server_env": {"JUPYTER_NO_CONFIG": "1"},
            "default_url": "/api",
            "cull_timeout": 0,
            "mlflow": False,
            "start_timeout": 90,
        }
        fields.update(overrides)
        hub = Hub(HubSettings(**fields), config_lines)
        hubs.append(hub)
        return hub.start()

    yield make
    left = []
    for hub in hubs:
        left += hub.stop()
    assert not left, f"processes still running after the hub stopped: {left}"


def _pg(args: list[str], user: str | None, **kw: Any) -> subprocess.CompletedProcess[str]:
    cmd = [str(PG_BIN / args[0]), *args[1:]]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture
def second_account() -> Iterator[str]:
    """A real, unprivileged Unix account for the servers (created with useradd, removed after).

    Needs root (as in CI): the hub switches servers to this account.
    """
    if os.geteuid() != 0:
        missing_component("root (to create a second Unix account with useradd)")
    for tool in ("useradd", "userdel"):
        if not shutil.which(tool):
            missing_component(f"{tool} (Debian package passwd)")
    name = f"medai-t{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=60)


@pytest.fixture
def reachable_base() -> Iterator[Path]:
    """A fresh folder every account may enter (pytest's own temporary root is mode 0700)."""
    base = Path(tempfile.mkdtemp(prefix="medai-hub-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A private PostgreSQL 15 cluster on a free loopback port; yields its URL (db ``mlflow``).

    Runs as ``nobody`` when the tests run as root (PostgreSQL refuses root); data and unix
    socket live in a fresh temporary folder; stopped (``pg_ctl stop -m fast``) at the end.
    """
    if not (PG_BIN / "initdb").exists():
        missing_component(f"PostgreSQL server binaries in {PG_BIN} (Debian package postgresql)")
    user = "nobody" if os.geteuid() == 0 else None
    if user and not shutil.which("runuser"):
        missing_component("runuser (Debian package util-linux)")
    base = Path(tempfile.mkdtemp(prefix="medai-pg-"))
    data, port = base / "data", free_port()
    if user:
        shutil.chown(base, user=user)
    base.chmod(0o700)
    _pg(["initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"], user)
    started = False
    try:
        _pg(
            [
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off",
                "start",
            ],
            user,
        )
        started = True
        url = f"postgresql://postgres@127.0.0.1:{port}"
        import psycopg2

        conn = psycopg2.connect(f"{url}/postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE mlflow")
        conn.close()
        yield f"{url}/mlflow"
    finally:
        if started:
            _pg(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"], user)
        shutil.rmtree(base, ignore_errors=True)


def held_by(hub: Hub) -> dict[str, tuple[str, str]]:
    """``{unit: (user, server)}`` straight from the hub's allocation state file."""
    import sqlite3

    path = hub.settings.data / "gpu-state.sqlite"
    conn = sqlite3.connect(path, timeout=10)
    try:
        rows = conn.execute("SELECT device, user, server FROM allocations").fetchall()
    finally:
        conn.close()
    return {d: (u, s) for d, u, s in rows}


def wait_released(hub: Hub, user: str, timeout: float = 30.0) -> None:
    """Wait until ``user`` holds no GPU unit."""
    wait_for(
        f"{user}'s GPU to be released",
        lambda: all(u != user for u, _ in held_by(hub).values()),
        timeout,
    )


def elapsed(start: float) -> float:
    return time.monotonic() - start

"""Start a real JupyterHub (``medai-lab hub`` config) on loopback for a test, drive it, stop it.

The hub runs as ``medai-lab hub`` runs it (``python -m medai_lab.hub.app``), in its own session,
from the generated ``jupyterhub_config.py`` with a test-admin
service token appended (the same way an instructor adds lines to that file). Stopping sends
SIGTERM (JupyterHub then stops servers, services and the proxy), waits, and kills whatever is
left of every process it started, by pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from medai_lab.hub.settings import HubSettings, free_port, write_config

ADMIN_SCOPES = [
    "admin:users",
    "admin:servers",
    "admin:server_state",
    "tokens",
    "list:users",
    "read:users",
    "admin:groups",
    "read:services",
]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def proc_environ(pid: int) -> dict[str, str]:
    """The environment a running process started with (``/proc/<pid>/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def descendants(pid: int) -> set[int]:
    """Every live process whose ancestor chain contains ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    for p in parent:
        q = p
        while q in parent and q not in (0, 1):
            if parent[q] == pid:
                out.add(p)
                break
            q = parent[q]
    return out


class Hub:
    """One JupyterHub under test.

    Parameters
    ----------
    settings
        Hub settings; ``data_dir`` should be a fresh temporary folder.
    """

    def __init__(self, settings: HubSettings, config_lines: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.config_lines = config_lines
        self.token = secrets.token_hex(24)
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen_pids: set[int] = set()
        self.log_path = Path(settings.data_dir) / "hub.log"

    @property
    def url(self) -> str:
        return self.settings.public_url

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def start(self, timeout: float = 60.0) -> Hub:
        """Write the config, start JupyterHub, wait until its API answers through the proxy."""
        s = self.settings
        if not s.port:
            s.port = free_port()
        s.resolve_ports()
        config = write_config(s)
        with config.open("a") as fh:
            service = {"name": "test-admin", "api_token": self.token}
            role = {"name": "test-admin", "scopes": ADMIN_SCOPES, "services": ["test-admin"]}
            fh.write(
                "\n# tests: an admin service token\n"
                f"c.JupyterHub.services.append({service!r})\n"
                f"c.JupyterHub.load_roles.append({role!r})\n"
            )
            fh.writelines(f"{line}\n" for line in self.config_lines)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medai_lab.hub.app", "-f", str(config)],
            cwd=s.data,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"hub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                return self.get("/").status_code == 200
            except requests.RequestException:
                return False

        wait_for("the hub API", up, timeout)
        return self

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- HTTP -------------------------------------------------------------------------------
    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"token {token or self.token}"}

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return requests.get(self.api + path, headers=self._headers(token), timeout=30, **kw)

    def post(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return requests.post(self.api + path, headers=self._headers(token), timeout=30, **kw)

    def delete(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        return requests.delete(self.api + path, headers=self._headers(token), timeout=30, **kw)

    # -- users and servers ------------------------------------------------------------------
    def create_users(self, names: list[str]) -> None:
        r = self.post("/users", json={"usernames": names})
        assert r.status_code == 201, r.text

    def user_token(self, name: str) -> str:
        r = self.post(f"/users/{name}/tokens", json={"note": "test", "expires_in": 3600})
        assert r.status_code in (200, 201), r.text
        return r.json()["token"]

    def server(self, name: str) -> dict[str, Any] | None:
        r = self.get(f"/users/{name}")
        assert r.status_code == 200, r.text
        return r.json().get("servers", {}).get("")

    def start_server(self, name: str, token: str | None = None, **options: Any) -> int:
        r = self.post(f"/users/{name}/server", token=token, json=options or None)
        assert r.status_code in (201, 202), f"{name}: {r.status_code} {r.text}"
        return r.status_code

    def wait_ready(self, name: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait for ``name``'s server to be ready; returns its model (with ``state``)."""

        def ready() -> dict[str, Any] | None:
            model = self.server(name)
            if model is None:
                r = self.get(f"/users/{name}")
                pending = r.json().get("pending")
                if not pending:
                    raise AssertionError(f"{name}'s server failed to start:\n{self.log_tail()}")
                return None
            return model if model.get("ready") else None

        model = wait_for(f"{name}'s server", ready, timeout)
        pid = model.get("state", {}).get("pid")
        if pid:
            self.seen_pids.add(int(pid))
        return model

    def stop_server(self, name: str, timeout: float = 60.0) -> None:
        r = self.delete(f"/users/{name}/server")
        assert r.status_code in (202, 204), r.text
        wait_for(f"{name}'s server to stop", lambda: self.server(name) is None, timeout)

    # -- shutdown ---------------------------------------------------------------------------
    def crash(self) -> set[int]:
        """SIGKILL the hub process alone (a crash); returns the pids it leaves running."""
        assert self.proc is not None
        left = descendants(self.proc.pid) | self.seen_pids
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
        return {pid for pid in left if _alive(pid)}

    def terminate(self, timeout: float = 120.0) -> tuple[float, int]:
        """SIGTERM the hub alone (as an init system stops it); (seconds until it exited, code)."""
        assert self.proc is not None
        self.seen_pids |= descendants(self.proc.pid)  # checked (and killed) by stop()
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return time.monotonic() - start, code

    def stop(self, timeout: float = 45.0) -> list[int]:
        """Stop the hub and everything it started; returns pids that had to be killed."""
        if self.proc is None:
            return []
        tree = descendants(self.proc.pid) | self.seen_pids
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # The hub signals its proxy and services and exits without waiting for them: on a
        # loaded machine they may need a few seconds more. Only what outlives that counts.
        end = time.monotonic() + 10.0
        while any(_alive(pid) for pid in tree) and time.monotonic() < end:
            time.sleep(0.2)
        killed = []
        for pid in sorted(tree):
            if _alive(pid):
                killed.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.proc = None
        return killed


def sign_up_and_in(hub: Hub, name: str) -> tuple[requests.Session, str]:
    """Sign up and log in through NativeAuthenticator's forms: (browser session, API token)."""
    password = secrets.token_urlsafe(16)
    web = requests.Session()
    assert web.get(f"{hub.url}/hub/signup", timeout=30).status_code == 200
    xsrf = web.cookies.get("_xsrf")
    form = {"username": name, "signup_password": password, "_xsrf": xsrf}
    form["signup_password_confirmation"] = password
    r = web.post(f"{hub.url}/hub/signup", data=form, timeout=30)
    assert r.status_code == 200 and "signup was successful" in r.text, r.text[-800:]
    r = web.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": "wrong-" + password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code != 302, "a wrong password must not sign in"
    r = web.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text[-800:]
    # the signed-in browser session asks the hub API for a token (cookie + XSRF header)
    r = web.post(
        f"{hub.api}/users/{name}/tokens",
        json={"note": "notebook", "expires_in": 3600},
        headers={"X-XSRFToken": web.cookies.get("_xsrf") or xsrf},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return web, r.json()["token"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return re.search(r"\) Z ", stat) is None  # zombies are gone already

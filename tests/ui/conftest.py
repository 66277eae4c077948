"""Browser tests: a real ``jupyter lab`` started by the session, driven by Debian's Chromium.

* ``lab``: JupyterLab on 127.0.0.1 and a free port, a random token, a temporary root folder and
  its own temporary Jupyter config/data/runtime and IPython folders (the venv's
  ``share/jupyter`` stays on the path, so the ipywidgets and anywidget labextensions load), no
  browser, no news or update checks, ``window.jupyterapp`` exposed, and a ``python3``
  kernelspec that runs this interpreter. Stopped at the end of the session with its kernels.
* ``browser`` / ``page``: Playwright driving ``/usr/bin/chromium`` (headless, fresh profile).
  Every request to a host that is not loopback is aborted and recorded in ``page.offsite``
  (also WebSockets), so a test can assert nothing was fetched from a network.
* ``LabPage`` (``lab_page`` fixture): write a notebook, open it, wait for its kernel, run
  cells, read outputs and errors. All waits are bounded.

In CI (``CI=true``) a missing Chromium, JupyterLab or Playwright fails; elsewhere it skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

# The Orthanc fixtures of tests/integration (a real PACS for the PACS browser test).
from integration.conftest import (  # noqa: F401
    _orthanc_reaper,
    dicom_files,
    orthanc,
    orthanc_exe,
    orthanc_factory,
    seeded_orthanc,
)
from testsupport import missing_component  # tests/testsupport.py

CHROMIUM = os.environ.get("MEDAI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome", "devtools"):
        return True
    return (parts.hostname or "") in LOOPBACK


@dataclass
class LabServer:
    """A running ``jupyter lab``; ``api()`` talks to its REST API with the token."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen
    log: Path

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Save a notebook of code cells (through the contents API); returns its path."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        body = {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))}
        self.api("PUT", "/api/contents/" + quote(name), body)
        return name

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Shut the server down with its kernels; kill what is left of them if it hangs.

        Kernels run in sessions of their own (jupyter_client), so they are found as children
        of the server before it stops, and each is killed by its id if it outlives the server.
        """
        kernels = _children(self.proc.pid)
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("POST", "/api/shutdown", timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT_S)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pid in kernels:
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes (its parent, the server, has exited).
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _jupyter_env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "IPYTHONDIR": base / "ipython",
        "JUPYTERLAB_SETTINGS_DIR": base / "config" / "lab" / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "config" / "lab" / "workspaces",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env.pop("JUPYTER_PATH", None)  # the venv's share/jupyter (sys.prefix) is searched anyway
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    # A kernelspec that runs this interpreter (the user data dir comes first on the path).
    spec = base / "data" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )
    # No news, no update checks (also the "receive news?" toast).
    notification = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"})
    )
    return env


@pytest.fixture(scope="session")
def _ui_components() -> None:
    """Chromium, Playwright and JupyterLab are all there (else fail in CI / skip)."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing_component("JupyterLab (pip install jupyterlab)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing_component("Playwright for Python (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        missing_component(f"Chromium at {CHROMIUM} (Debian package chromium)")


@contextlib.contextmanager
def running_lab(base: Path, root: Path, env: dict[str, str]) -> Iterator[LabServer]:
    """``jupyter lab`` on a free loopback port serving ``root``; stopped with its kernels (and
    anything they started, e.g. the proxied MLflow server) at the end."""
    token, port, log = secrets.token_hex(24), _free_port(), base / "lab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False", "--MappingKernelManager.cull_idle_timeout=0",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI runners
        cmd.append("--allow-root")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = LabServer(f"http://127.0.0.1:{port}", token, root, proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status", timeout=2)
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.25)
        yield server
    finally:
        spawned = _descendants(proc.pid)
        server.stop()
        for pid in spawned:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def lab(_ui_components: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A real ``jupyter lab`` for the session (see the module docstring)."""
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "root"
    root.mkdir()
    with running_lab(base, root, _jupyter_env(base)) as server:
        yield server


@pytest.fixture(scope="session")
def browser(_ui_components: None) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (headless, no sandbox, no GPU)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Offsite:
    """Requests to non-loopback hosts: all are aborted; their URLs are kept here."""

    urls: list[str] = field(default_factory=list)


def guarded_page(browser: Any, width: int = 1400, height: int = 1000) -> tuple[Any, Any]:
    """(context, page): a fresh context (own profile) where non-loopback requests are aborted.

    ``page.offsite.urls`` lists what was blocked (requests and WebSockets alike);
    ``page.console_lines`` keeps the console and page errors for failure messages.
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    offsite = Offsite()

    def guard(route: Any) -> None:
        url = route.request.url
        if _is_loopback(url):
            route.continue_()
        else:
            offsite.urls.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("request", lambda r: None if _is_loopback(r.url) else offsite.urls.append(r.url))
    page.on("websocket", lambda ws: None if _is_loopback(ws.url) else offsite.urls.append(ws.url))
    page.offsite = offsite
    page.console_lines = []
    page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.console_lines.append(f"pageerror: {e} {e.stack}"))
    return context, page


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh guarded page (see :func:`guarded_page`), closed after the test."""
    context, page = guarded_page(browser)
    try:
        yield page
    finally:
        context.close()


# JavaScript run in the page; `jupyterapp` is exposed by --LabApp.expose_app_in_browser.
_JS_NOTEBOOK = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.sessionContext) return w;
  }
  return null;
}
"""

_JS_KERNEL_IDLE = f"""
(path) => {{
  const w = ({_JS_NOTEBOOK})(path);
  if (!w || !w.context.isReady || !w.sessionContext.session) return false;
  const k = w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}}
"""

_JS_RUN = f"""
async ([path, index, timeoutMs]) => {{
  const app = window.jupyterapp;
  const w = ({_JS_NOTEBOOK})(path);
  if (!w) throw new Error('notebook ' + path + ' is not open');
  app.shell.activateById(w.id);
  let command = 'notebook:run-all-cells';
  if (index !== null) {{
    w.content.activeCellIndex = index;
    command = 'notebook:run-cell';
  }}
  let timer;
  const timeout = new Promise((_, reject) => {{
    timer = setTimeout(() => reject(new Error('cells still running after ' + timeoutMs + ' ms')),
                       timeoutMs);
  }});
  try {{
    return await Promise.race([app.commands.execute(command), timeout]);
  }} finally {{
    clearTimeout(timer);
  }}
}}
"""

_JS_OUTPUTS = f"""
(path) => {{
  const w = ({_JS_NOTEBOOK})(path);
  const cells = w.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {{
    const cell = cells.get(i);
    out.push({{
      execution_count: cell.executionCount === undefined ? null : cell.executionCount,
      outputs: cell.outputs ? cell.outputs.toJSON() : [],
    }});
  }}
  return out;
}}
"""


_JS_EXECUTE = f"""
async ([path, code, timeoutMs]) => {{
  const w = ({_JS_NOTEBOOK})(path);
  const kernel = w && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!kernel) throw new Error('no kernel for ' + path);
  const out = {{ stdout: '', error: null }};
  const future = kernel.requestExecute({{ code, store_history: false, silent: false }});
  future.onIOPub = (msg) => {{
    const t = msg.header.msg_type;
    if (t === 'stream') out.stdout += msg.content.text;
    else if (t === 'error')
      out.error = msg.content.ename + ': ' + msg.content.evalue + '\\n' +
        msg.content.traceback.join('\\n');
  }};
  let timer;
  const timeout = new Promise((_, reject) => {{
    timer = setTimeout(() => reject(new Error('code still running after ' + timeoutMs + ' ms')),
                       timeoutMs);
  }});
  try {{
    await Promise.race([future.done, timeout]);
  }} finally {{
    clearTimeout(timer);
  }}
  return out;
}}
"""


class CellError(AssertionError):
    """A notebook cell raised; the message carries the traceback."""


class LabPage:
    """A notebook open in JupyterLab in a Playwright page."""

    def __init__(self, page: Any, lab: LabServer) -> None:
        self.page, self.lab, self.path = page, lab, ""

    def open(self, name: str, cells: list[str] | None = None, timeout_s: float = 90) -> LabPage:
        """Write (when ``cells`` is given) and open notebook ``name``; wait for an idle kernel."""
        if cells is not None:
            self.lab.write_notebook(name, cells)
        self.path = name
        self.page.goto(
            f"{self.lab.url}/lab/tree/{quote(name)}?token={self.lab.token}",
            wait_until="domcontentloaded",
            timeout=timeout_s * 1000,
        )
        self.page.wait_for_function("() => !!window.jupyterapp", timeout=timeout_s * 1000)
        self.page.wait_for_function(
            f"({_JS_NOTEBOOK})({json.dumps(name)}) !== null", timeout=timeout_s * 1000
        )
        self.wait_idle(timeout_s)
        return self

    def wait_idle(self, timeout_s: float = 60) -> None:
        self.page.wait_for_function(
            f"({_JS_KERNEL_IDLE})({json.dumps(self.path)})", timeout=timeout_s * 1000
        )

    def run(self, index: int | None = None, timeout_s: float = 120, check: bool = True) -> Any:
        """Run all cells (``index=None``) or one; waits until done; raises on a cell error."""
        ok = self.page.evaluate(_JS_RUN, [self.path, index, int(timeout_s * 1000)])
        self.wait_idle(timeout_s)
        if check:
            self.raise_errors()
        return ok

    def execute(self, code: str, timeout_s: float = 60) -> str:
        """Run ``code`` in the notebook's kernel (not as a cell); returns its stdout."""
        out = self.page.evaluate(_JS_EXECUTE, [self.path, code, int(timeout_s * 1000)])
        if out["error"]:
            raise CellError(out["error"])
        return out["stdout"]

    def outputs(self) -> list[dict[str, Any]]:
        return self.page.evaluate(_JS_OUTPUTS, self.path)

    def raise_errors(self) -> None:
        for i, cell in enumerate(self.outputs()):
            for out in cell["outputs"]:
                if out.get("output_type") == "error":
                    trace = "\n".join(out.get("traceback", []))
                    raise CellError(f"cell {i}: {out.get('ename')}: {out.get('evalue')}\n{trace}")

    def text(self, index: int) -> str:
        """The stream and text/plain outputs of cell ``index``."""
        parts = []
        for out in self.outputs()[index]["outputs"]:
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                parts.append("".join(text) if isinstance(text, list) else text)
            elif "data" in out and "text/plain" in out["data"]:
                value = out["data"]["text/plain"]
                parts.append("".join(value) if isinstance(value, list) else value)
        return "".join(parts)


@pytest.fixture
def lab_page(page: Any, lab: LabServer) -> LabPage:
    return LabPage(page, lab)

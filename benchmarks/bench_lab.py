"""JupyterLab start-up and kernel start, with and without the MedAI Lab extensions, same run.

* **Lab start-up to a usable page**: from spawning ``jupyter lab`` (loopback, free port, random
  token, temporary root and Jupyter/IPython folders) to Debian's Chromium (Playwright, headless,
  fresh context so nothing is cached, non-loopback requests aborted) showing the restored
  launcher with ``window.jupyterapp`` started. *With*: the server extension enabled through
  ``jupyter-config/``, the prebuilt labextension, the ``mlflow`` proxy entry. *Without*: the
  server extension switched off in the user config and the labextension disabled in
  ``labconfig/page_config.json`` (jupyter-server-proxy, installed anyway, stays in both). Runs
  alternate (``--repeat`` each); medians are reported. Split into server ready (``/api/status``
  answers) and page (navigation to usable launcher).
* **Kernel start + ``%load_ext medai_lab``** through jupyter_client: start, wait ready, run
  ``%load_ext medai_lab`` (with) or ``pass`` (without); both kernels get
  ``--IPKernelApp.extra_extensions=[]`` so an installed auto-load config does not blur them.
  Also the extension's load time measured inside the kernel.

Prints ``METRIC`` lines and, last, ``RATIO lab_startup_with_vs_without <x>`` (target <= 1.1).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lab import free_port, isolated_env
from _quiet import Quiet

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
USABLE = """() => {
  const app = window.jupyterapp;
  return !!app && app.started !== undefined && !!document.querySelector('.jp-Launcher')
    && !!document.querySelector('.jp-LauncherCard');
}"""
MEDAI_SECTION = "() => [...document.querySelectorAll('.jp-Launcher-section h2')]" \
    ".some(h => h.textContent.includes('MedAI Lab'))"  # fmt: skip


def _env(base: Path, with_ext: bool) -> dict[str, str]:
    env = isolated_env(base)
    conf, data = base / "JUPYTER_CONFIG_DIR", base / "JUPYTER_DATA_DIR"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{base / 'mlflow.db'}"
    if with_ext:
        (conf / "jupyter_server_config.d").mkdir()
        shutil.copy(REPO / "jupyter-config/jupyter_server_config.d/medai_lab.json",
                    conf / "jupyter_server_config.d")  # fmt: skip
        if not (Path(sys.prefix) / "share/jupyter/labextensions/medai-lab").exists():
            (data / "labextensions").mkdir()
            (data / "labextensions" / "medai-lab").symlink_to(REPO / "medai_lab" / "labextension")
    else:
        (conf / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"medai_lab.server": False}}})
        )
        (conf / "labconfig").mkdir()
        (conf / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"medai-lab": True}})
        )
    return env


def _lab_once(browser: Any, with_ext: bool) -> dict[str, float]:
    """One cold start: server ready, page usable, (with) MedAI section shown; seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        base = Path(tmp)
        (base / "root").mkdir()
        env, token, port = _env(base, with_ext), secrets.token_hex(16), free_port()
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={base / 'root'}", f"--IdentityProvider.token={token}",
               "--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--ServerApp.terminals_enabled=False"]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=base / "root", env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            deadline = t0 + 120
            while True:
                try:
                    auth = {"Authorization": f"token {token}"}
                    req = urllib.request.Request(f"{url}/api/status", headers=auth)
                    urllib.request.urlopen(req, timeout=2).read()
                    break
                except (OSError, urllib.error.URLError):
                    if proc.poll() is not None or time.perf_counter() > deadline:
                        raise RuntimeError("jupyter lab did not start") from None
                    time.sleep(0.05)
            t_server = time.perf_counter()
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            local = ("http://127.0.0.1", "data:", "blob:")
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(local)
                          else r.abort("blockedbyclient"))  # fmt: skip
            page = context.new_page()
            page.goto(f"{url}/lab?token={token}", wait_until="commit", timeout=90_000)
            page.wait_for_function(USABLE, timeout=90_000, polling=20)
            t_page = time.perf_counter()
            out = {"server": t_server - t0, "page": t_page - t_server, "total": t_page - t0}
            if with_ext:
                page.wait_for_function(MEDAI_SECTION, timeout=30_000, polling=20)
                out["medai_section"] = time.perf_counter() - t0
            context.close()
            return out
        finally:
            try:
                proc.terminate()
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _kernel_once(with_ext: bool) -> dict[str, float]:
    from jupyter_client import KernelManager

    km = KernelManager()
    km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     "--IPKernelApp.extra_extensions=[]"]  # fmt: skip
    load = ("import time as _t; _s = _t.perf_counter(); get_ipython().run_line_magic("
            "'load_ext', 'medai_lab'); print(_t.perf_counter() - _s)")  # fmt: skip
    code = load if with_ext else "pass"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
        km.start_kernel(cwd=tmp, env=dict(os.environ, IPYTHONDIR=tmp),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            client = km.client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            out: list[str] = []
            reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
                m["content"].get("text", "")) if m["msg_type"] == "stream" else None)  # fmt: skip
            total = time.perf_counter() - t0
            client.stop_channels()
        finally:
            km.shutdown_kernel(now=True)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"kernel code failed: {reply['content']}")
    result = {"total": total}
    if with_ext:
        result["load_ext"] = float("".join(out).strip())
    return result


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="lab starts per variant")
    ap.add_argument("--kernel-repeat", type=int, default=5, help="kernel starts per variant")
    ap.add_argument("--chromium", default=os.environ.get("MEDAI_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    if not (REPO / "medai_lab" / "labextension" / "package.json").is_file():
        print("the labextension is not built (medai_lab/labextension)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    quiet = Quiet(limit=0.15, budget_s=20)
    lab: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    kernel: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            _lab_once(browser, True)  # warm the OS file cache for both variants alike
            for _ in range(args.repeat):
                for variant in (False, True):
                    quiet.wait()
                    lab[variant].append(_lab_once(browser, variant))
        finally:
            browser.close()
    _kernel_once(True)
    for _ in range(args.kernel_repeat):
        for variant in (False, True):
            quiet.wait()
            kernel[variant].append(_kernel_once(variant))
    for variant, name in ((False, "without"), (True, "with")):
        for key in ("server", "page", "total"):
            print(f"METRIC lab_{key}_s_{name} {_median(lab[variant], key):.3f}")
        print(f"METRIC kernel_start_s_{name} {_median(kernel[variant], 'total'):.3f}")
    print(f"METRIC lab_medai_section_shown_s {_median(lab[True], 'medai_section'):.3f}")
    print(f"METRIC kernel_load_ext_medai_lab_s {_median(kernel[True], 'load_ext'):.4f}")
    print(f"METRIC kernel_ratio_with_vs_without "
          f"{_median(kernel[True], 'total') / _median(kernel[False], 'total'):.3f}")  # fmt: skip
    print(f"METRIC waited_for_quiet_s {quiet.waited_s:.1f}")
    ratio = _median(lab[True], "total") / _median(lab[False], "total")
    print(f"RATIO lab_startup_with_vs_without {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

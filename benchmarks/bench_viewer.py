"""The notebook viewer in real JupyterLab + Chromium: first paint, bytes, slice-change latency.

A fresh ``jupyter lab`` (loopback, free port, random token, temporary root and Jupyter/IPython
folders, stopped at the end even on error) is driven by Debian's Chromium through Playwright
(headless, fresh profile, every non-loopback request aborted). One notebook makes a CT-like
512x512x300 int16 volume in the kernel (body, organs, bone, seeded noise: 157 MB), then, timed:

* **viewer** ``view(volume, spacing=...)``: first paint = from the start of the cell's execution
  (page clock, just before ``notebook:run-cell``) to the first painted frame of the widget
  (``root.medai.paints`` > 0); also the widget's own ``firstPaintMs`` and the time until the
  full-resolution level is loaded. Bytes = compressed volume bytes the widget received
  (``root.medai.bytesReceived``) and all WebSocket frames the page received. Slice change:
  ``--steps`` ArrowUp presses on the axial pane, each waited for; latency from the key event to
  the painted frame, as the viewer records it (``root.medai.latencies``).
* **ipywidgets baselines**, same run, same kernel and volume: an ``IntSlider`` and an ``Image``;
  each slider change renders the windowed slice in the kernel and sends it back, once as a
  matplotlib figure (the usual notebook way; the named peer) and once with NumPy + PIL (the
  fastest kernel-side rendering, reported as ``ratio_vs_ipywidgets_pil``).
* **brush strokes** (annotation), same viewer: ``--strokes`` mouse drags with the paint tool
  (key ``b``, 5 mm disc) on the axial pane between seeded random points of the body; latency
  from each pointer event to the next frame after the stroke was painted
  (``root.medai.brushLatencies``), and the bytes the strokes' diffs took to the kernel (the
  page's count and the kernel's, ``w.annotations.bytes``), against the uint8 label volume the
  naive way would send.
  ``--baseline-steps`` ArrowRight presses on the focused slider handle; latency from the key
  event to the new image decoded and painted (``load`` event of the ``<img>``, then the next
  animation frame), measured in the page.

Prints ``METRIC`` lines and, last, ``RATIO viewer_vs_ipywidgets <x>`` (matplotlib baseline p50
/ viewer p50). Needs JupyterLab, anywidget, ipywidgets, Playwright and Chromium (``--chromium``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _lab import free_port, isolated_env
from _quiet import Quiet, cpu_mark, others_share

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = "document.querySelector('[data-medai-viewer]')"

MAKE_VOLUME = """
import numpy as np
def ct_like(nx=512, ny=512, nz=300, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : ny * 1j, -1 : 1 : nx * 1j]
    vol = np.empty((nx, ny, nz), np.int16)
    for k in range(nz):
        z = 2 * k / (nz - 1) - 1
        body = (x / 0.85) ** 2 + (y / 0.65) ** 2 < 1
        liver = ((x + 0.35) / 0.3) ** 2 + ((y + 0.05) / 0.25) ** 2 + (z / 0.8) ** 2 < 1
        lung = (((abs(x) - 0.4) / 0.25) ** 2 + (y / 0.4) ** 2 < 1) & (z > 0.2)
        bone = (x ** 2 + (y - 0.45) ** 2 < 0.01) | ((x ** 2 + (y - 0.45) ** 2 > 0.005) & body
               & ((x / 0.85) ** 2 + (y / 0.65) ** 2 > 0.92))
        img = np.where(body, 40.0, -1000.0) + 20 * liver - 860 * lung + 700 * bone
        img += rng.normal(0, 15, img.shape)
        vol[:, :, k] = img.T.astype(np.int16)
    return vol
vol = ct_like({nx}, {ny}, {nz})
print(vol.shape, vol.dtype, vol.nbytes)
"""

VIEW = "from medai_lab.widgets import view\nw = view(vol, spacing=(0.8, 0.8, 1.0))\nw"

BASELINE = """
import io
import ipywidgets as W
from PIL import Image
def render(k, width=400.0, level=50.0):
    s = vol[:, :, k].T[::-1, ::-1].astype(np.float32)  # radiological axial
    g = np.clip((s - (level - width / 2)) * (255 / width), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(g).save(buf, format="PNG")
    return buf.getvalue()
k0 = vol.shape[2] // 2
image = W.Image(value=render(k0), format="png")
slider = W.IntSlider(value=k0, min=0, max=vol.shape[2] - 1, description="slice")
slider.observe(lambda change: setattr(image, "value", render(change["new"])), "value")
W.VBox([slider, image])
"""

# The usual notebook way: a matplotlib figure per slice (Agg, PNG) into the same Image widget.
BASELINE_MPL = """
from matplotlib.figure import Figure
def render_mpl(k, width=400.0, level=50.0):
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(vol[:, :, k].T[::-1, ::-1], cmap="gray", vmin=level - width / 2,
              vmax=level + width / 2)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
image_mpl = W.Image(value=render_mpl(k0), format="png")
slider_mpl = W.IntSlider(value=k0, min=0, max=vol.shape[2] - 1, description="slice")
slider_mpl.observe(lambda change: setattr(image_mpl, "value", render_mpl(change["new"])), "value")
W.VBox([slider_mpl, image_mpl])
"""


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in (
        "127.0.0.1",
        "localhost",
        "::1",
    )


def guard_for(offsite: list[str]) -> Any:
    """A Playwright route handler: loopback requests pass, others are aborted and recorded."""

    def guard(route: Any) -> None:
        if _loopback(route.request.url):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort("blockedbyclient")

    return guard


class Lab:
    """``jupyter lab`` in a temporary folder; ``stop()`` shuts it and its kernels down."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.root.mkdir()
        env = isolated_env(base)
        spec = base / "JUPYTER_DATA_DIR" / "kernels" / "python3"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
        )
        self.token, port = secrets.token_hex(24), free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
            "--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = base / "lab.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log.read_text()[-2000:]}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start in 90 s") from None
                time.sleep(0.25)

    def api(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def notebook(self, name: str, cells: list[str]) -> None:
        nb = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "cells": [
                {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src,
                 "outputs": [], "execution_count": None}
                for i, src in enumerate(cells)
            ],
        }  # fmt: skip
        self.api(
            "PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": nb}
        )

    def shutdown_kernels(self) -> None:
        """Stop every kernel (between head-to-head contestants: memory back to the machine)."""
        for k in self.api("GET", "/api/kernels") or []:
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("DELETE", f"/api/kernels/{k['id']}")

    def stop(self) -> None:
        kernels = [
            int(p.parent.name)
            for p in Path("/proc").glob("[0-9]*/stat")
            if _ppid(p) == self.proc.pid
        ]
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("POST", "/api/shutdown", timeout=5)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        time.sleep(0.5)
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


JS_PANEL = """(path) => {
  for (const w of window.jupyterapp.shell.widgets('main'))
    if (w.context && w.context.path === path && w.sessionContext) return w;
  return null;
}"""

JS_RUN_CELL = f"""async ([path, index, timeoutMs]) => {{
  const w = ({JS_PANEL})(path);
  window.jupyterapp.shell.activateById(w.id);
  w.content.activeCellIndex = index;
  let timer;
  const late = new Promise((_, no) => {{ timer = setTimeout(() => no(new Error('timeout')),
                                                              timeoutMs); }});
  try {{ await Promise.race([window.jupyterapp.commands.execute('notebook:run-cell'), late]); }}
  finally {{ clearTimeout(timer); }}
}}"""

# Start the cell and time, in the page, until the viewer has painted its first frame.
JS_FIRST_PAINT = f"""async ([path, index, timeoutMs]) => {{
  const w = ({JS_PANEL})(path);
  window.jupyterapp.shell.activateById(w.id);
  w.content.activeCellIndex = index;
  const t0 = performance.now();
  window.jupyterapp.commands.execute('notebook:run-cell');
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  while (performance.now() - t0 < timeoutMs) {{
    const root = {ROOT};
    if (root && root.medai && root.medai.paints > 0) return performance.now() - t0;
    await frame();
  }}
  throw new Error('no frame painted in ' + timeoutMs + ' ms');
}}"""


JS_EXECUTE = f"""async ([path, code]) => {{
  const k = ({JS_PANEL})(path).sessionContext.session.kernel;
  let out = '';
  const f = k.requestExecute({{ code, store_history: false }});
  f.onIOPub = (m) => {{ if (m.header.msg_type === 'stream') out += m.content.text; }};
  await f.done;
  return out;
}}"""


def strokes(page: Any, quiet: Any, n: int, seed: int = 0) -> dict[str, Any]:
    """Paint ``n`` strokes on the axial pane; brush latencies and diff bytes."""
    rng = np.random.default_rng(seed)
    shape, k = page.evaluate(f"() => [{ROOT}.medai.state().shape, {ROOT}.medai.state().cursor[2]]")
    box = page.locator('[data-medai-viewer] canvas[data-plane="axial"]').bounding_box()

    def xy(i: int, j: int) -> tuple[float, float]:
        x, y = page.evaluate(
            f"(v) => {ROOT}.medai.voxelToCanvas('axial', v)", [int(i), int(j), int(k)]
        )
        return box["x"] + x, box["y"] + y

    page.keyboard.press("b")
    brush_slider = f"{ROOT}.medai.root.querySelector('[data-brush]')"
    page.evaluate(f"() => {{ const s = {brush_slider}; s.value = '5';"
                  " s.dispatchEvent(new Event('input')); }")  # fmt: skip
    start = page.evaluate(f"() => {ROOT}.medai.brushLatencies.length")
    done0 = page.evaluate(f"() => {ROOT}.medai.state().edit.strokes")
    quiet.wait()
    for s in range(n):
        a = rng.integers([shape[0] // 4, shape[1] // 4], [3 * shape[0] // 4, 3 * shape[1] // 4])
        b = np.clip(a + rng.integers(-40, 41, 2), 0, [shape[0] - 1, shape[1] - 1])
        page.mouse.move(*xy(*a))
        page.mouse.down()
        page.mouse.move(*xy(*b), steps=4)
        page.mouse.up()
        page.wait_for_function(
            f"(n) => {ROOT}.medai.state().edit.strokes >= n", arg=done0 + s + 1, timeout=10_000
        )
    page.wait_for_function(
        f"() => {{ const e = {ROOT}.medai.state().edit; return e.acked === e.sent; }}",
        timeout=60_000,
    )
    lat = page.evaluate(f"(s) => {ROOT}.medai.brushLatencies.slice(s)", start)
    paint = page.evaluate(f"(s) => {ROOT}.medai.brushPaintLatencies.slice(s)", start)
    edit = page.evaluate(f"() => {ROOT}.medai.state().edit")
    kernel = page.evaluate(JS_EXECUTE, ["bench.ipynb", "print(w.annotations.bytes, "
                           "w.annotations.edits, int((w.labels > 0).sum()))"]).split()  # fmt: skip
    page.keyboard.press("n")
    return {
        "lat": lat, "paint": paint, "edit": edit, "kernel_bytes": int(kernel[0]),
        "kernel_edits": int(kernel[1]), "painted": int(kernel[2]), "volume": int(np.prod(shape)),
    }  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--steps", type=int, default=100, help="viewer slice changes")
    ap.add_argument("--baseline-steps", type=int, default=30, help="ipywidgets slice changes")
    ap.add_argument("--strokes", type=int, default=200, help="brush strokes painted")
    ap.add_argument("--h2h-steps", type=int, default=100, help="wheel ticks per widget (h2h)")
    ap.add_argument("--h2h-big", type=int, default=1000, help="slices of the big case (0: skip)")
    ap.add_argument("--h2h-timeout", type=float, default=300, help="load wait per widget, s")
    ap.add_argument("--no-h2h", action="store_true", help="skip the ipyniivue head-to-head")
    ap.add_argument("--only-h2h", action="store_true", help="only the ipyniivue head-to-head")
    ap.add_argument("--chromium", default=os.environ.get("MEDAI_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        lab = Lab(Path(tmp))
        try:
            with sync_playwright() as pw:
                ratios: list[str] = []
                if not args.only_h2h:
                    browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                    try:
                        ratios.append(run(lab, browser, args))
                    finally:
                        browser.close()
                if not args.no_h2h:
                    ratios += head_to_head(lab, pw, args)
                for line in ratios:  # RATIO lines last
                    print(line)
                return 0 if all(line.startswith("RATIO") for line in ratios) else 1
        finally:
            lab.stop()


def baseline(page: Any, quiet: Any, cell: int, steps: int) -> list[float]:
    """Latencies (ms) from a key press on the slider to the kernel-rendered image painted."""
    page.evaluate(JS_RUN_CELL, ["bench.ipynb", cell, 60_000])
    img = page.locator(".widget-image").last
    img.wait_for(state="visible", timeout=30_000)
    page.evaluate(
        """() => {
             window.__keyT = [];
             window.__loadT = [];
             if (!window.__keyHook) {
               document.addEventListener('keydown', (e) => window.__keyT.push(e.timeStamp), true);
               window.__keyHook = true;
             }
             const img = [...document.querySelectorAll('.widget-image')].pop();
             img.addEventListener('load', () => requestAnimationFrame(
               () => window.__loadT.push(performance.now())));
           }"""
    )
    page.locator(".widget-slider .noUi-handle").last.focus()
    quiet.wait()
    for n in range(steps):
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(n) => window.__loadT.length >= n", arg=n + 1, timeout=30_000, polling=5
        )
    keys, loads = page.evaluate("() => [window.__keyT, window.__loadT]")
    return [b - a for a, b in zip(keys, loads, strict=False)]


def head_to_head(lab: Lab, pw: Any, args: argparse.Namespace) -> list[str]:
    """ipyniivue against this viewer (benchmarks/_niivue.py); returns the RATIO lines."""
    import _niivue

    offsite: list[str] = []
    guard = guard_for(offsite)

    ready = (f"(nb) => {{ if (!window.jupyterapp) return false; const w = ({JS_PANEL})(nb);"
             " return !!w && !!w.sessionContext.session && !!w.sessionContext.session.kernel"
             " && w.sessionContext.session.kernel.status === 'idle'; }")  # fmt: skip
    env = {
        "lab": lab, "pw": pw, "chromium": args.chromium, "args": CHROMIUM_ARGS, "guard": guard,
        "pid": os.getpid(), "quiet": Quiet(limit=0.15, budget_s=15),
        "js": {"ready": ready, "run_cell": JS_RUN_CELL, "panel": JS_PANEL, "execute": JS_EXECUTE},
    }  # fmt: skip
    rows = []
    cases = [tuple(args.shape)] + ([(*args.shape[:2], args.h2h_big)] if args.h2h_big else [])
    for shape in cases:
        t = time.perf_counter()
        files = _niivue.write_case(lab.root, *shape)
        print(f"h2h case {'x'.join(map(str, shape))} written in {time.perf_counter() - t:.0f} s")
        steps = args.h2h_steps if shape == cases[0] else 0
        for who in ("medai", "niivue"):
            rows.append(_niivue.contest(env, who, files, shape, steps, args.h2h_timeout))
            _niivue.describe(rows[-1], percentile)
    lines = _niivue.report(rows, percentile)
    print(f"h2h blocked off-host requests: {offsite}")
    return lines + (["FAILED: off-host requests"] if offsite else [])


def run(lab: Lab, browser: Any, args: argparse.Namespace) -> str:
    nx, ny, nz = args.shape
    cells = [MAKE_VOLUME.format(nx=nx, ny=ny, nz=nz), VIEW, BASELINE, BASELINE_MPL]
    lab.notebook("bench.ipynb", cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    offsite: list[str] = []
    guard = guard_for(offsite)

    context.route("**/*", guard)
    page = context.new_page()
    ws_bytes = [0]

    def on_ws(ws: Any) -> None:
        def count(payload: Any) -> None:
            ws_bytes[0] += len(payload)

        ws.on("framereceived", count)

    page.on("websocket", on_ws)
    page.goto(f"{lab.url}/lab/tree/bench.ipynb?token={lab.token}", timeout=90_000)
    page.wait_for_function(
        f"() => {{ if (!window.jupyterapp) return false;"
        f" const w = ({JS_PANEL})('bench.ipynb'); return !!w && !!w.sessionContext.session"
        " && !!w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; }",
        timeout=90_000,
    )
    t = time.perf_counter()
    page.evaluate(JS_RUN_CELL, ["bench.ipynb", 0, 120_000])
    print(f"volume {nx}x{ny}x{nz} int16 made in the kernel in {time.perf_counter() - t:.1f} s")

    # --- viewer: first paint, bytes, full load --------------------------------------------
    quiet = Quiet(limit=0.15, budget_s=15)
    quiet.wait()
    mark = cpu_mark()
    ws_before = ws_bytes[0]
    t_wall = time.perf_counter()
    first_ms = page.evaluate(JS_FIRST_PAINT, ["bench.ipynb", 1, 120_000])
    first_wall = time.perf_counter() - t_wall
    page.wait_for_function(
        f"() => {{ const s = {ROOT}.medai.state(); return s.level === 0 && !s.loading; }}",
        timeout=300_000,
        polling=50,
    )
    full_s = time.perf_counter() - t_wall
    hook = page.evaluate(f"() => [{ROOT}.medai.firstPaintMs, {ROOT}.medai.bytesReceived]")
    ws_volume = ws_bytes[0] - ws_before
    raw = nx * ny * nz * 2

    # --- viewer: slice changes by key press ------------------------------------------------
    centre = page.evaluate(
        f"() => {{ const m = {ROOT}.medai; const s = m.state();"
        " return m.voxelToCanvas('axial', s.cursor); }"
    )
    canvas = page.locator('[data-medai-viewer] canvas[data-plane="axial"]')
    canvas.click(position={"x": centre[0], "y": centre[1]})  # focus; the click's own frame
    page.wait_for_timeout(300)  # is recorded too: let it land before counting
    start = page.evaluate(f"() => {ROOT}.medai.latencies.length")
    k0 = page.evaluate(f"() => {ROOT}.medai.state().cursor[2]")
    key = "ArrowUp" if k0 + args.steps < nz else "ArrowDown"
    quiet.wait()
    for n in range(args.steps):
        page.keyboard.press(key)
        page.wait_for_function(
            f"(n) => {ROOT}.medai.latencies.length >= n", arg=start + n + 1, timeout=10_000
        )
    page.wait_for_timeout(500)
    lat = page.evaluate(f"(s) => {ROOT}.medai.latencies.slice(s)", start)
    moved = abs(page.evaluate(f"() => {ROOT}.medai.state().cursor[2]") - k0)

    # --- brush strokes (annotation) ----------------------------------------------------------
    brush = strokes(page, quiet, args.strokes)

    # --- ipywidgets baselines: PIL (fast) and matplotlib (what notebooks usually do) ---------
    base = baseline(page, quiet, 2, args.baseline_steps)
    base_mpl = baseline(page, quiet, 3, args.baseline_steps)
    share = others_share(mark)
    context.close()

    p50, p95 = statistics.median(lat), percentile(lat, 95)
    b50, m50 = statistics.median(base), statistics.median(base_mpl)
    print(f"viewer: first paint {first_ms:.0f} ms (page clock), {first_wall:.2f} s (wall clock),")
    print(f"  widget's own firstPaintMs {hook[0]}, full resolution loaded after {full_s:.2f} s")
    print(f"  volume {raw / 1e6:.1f} MB raw, {hook[1] / 1e6:.1f} MB received by the widget")
    print(
        f"  ({raw / max(hook[1], 1):.2f}x compression), websocket frames {ws_volume / 1e6:.1f} MB"
    )
    print(f"  {len(lat)} slice changes: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {max(lat):.2f} ms")
    if moved != args.steps:  # the kernel's echo of an older cursor moved the slice back
        print(f"  WARNING: {args.steps} key presses moved the slice by {moved}")
    bl, be = brush["lat"], brush["edit"]
    print(
        f"brush: {be['strokes']} strokes ({be['sent']} sent), {len(bl)} painted pointer events: "
        f"p50 {statistics.median(bl):.2f} ms, p95 {percentile(bl, 95):.2f} ms, max {max(bl):.2f} ms"
    )
    print(
        f"  event -> stroke drawn on the canvas (no frame wait): p50 "
        f"{statistics.median(brush['paint']):.2f} ms, p95 {percentile(brush['paint'], 95):.2f} ms"
    )
    print(f"  diffs to the kernel: {be['bytes_sent'] / 1e3:.1f} kB sent by the page, "
          f"{brush['kernel_bytes'] / 1e3:.1f} kB of runs applied by the kernel "
          f"({brush['kernel_edits']} edits, {brush['painted']} voxels labelled); the label "
          f"volume is {brush['volume'] / 1e6:.1f} MB")  # fmt: skip
    print(f"ipywidgets Image + IntSlider (PIL PNG in the kernel): {len(base)} changes,")
    print(f"  p50 {b50:.1f} ms, p95 {percentile(base, 95):.1f} ms")
    print(f"ipywidgets Image + IntSlider (matplotlib in the kernel): {len(base_mpl)} changes,")
    print(f"  p50 {m50:.1f} ms, p95 {percentile(base_mpl, 95):.1f} ms")
    print(f"machine CPU busy {share:.0%} beyond this script (Lab, kernel, Chromium included)")
    print(f"blocked off-host requests: {offsite}")
    print(f"METRIC first_paint_s {first_ms / 1000:.3f}")
    print(f"METRIC full_load_s {full_s:.3f}")
    print(f"METRIC slice_p50_ms {p50:.2f}")
    print(f"METRIC slice_p95_ms {p95:.2f}")
    print(f"METRIC bytes_sent {int(hook[1])}")
    print(f"METRIC ws_bytes_received {ws_volume}")
    print(f"METRIC brush_p50_ms {statistics.median(bl):.2f}")
    print(f"METRIC brush_p95_ms {percentile(bl, 95):.2f}")
    print(f"METRIC brush_paint_p95_ms {percentile(brush['paint'], 95):.2f}")
    print(f"METRIC brush_strokes {be['strokes']}")
    print(f"METRIC brush_bytes_synced {be['bytes_sent']}")
    print(f"METRIC brush_kernel_bytes {brush['kernel_bytes']}")
    print(f"METRIC ipywidgets_p50_ms {b50:.1f}")
    print(f"METRIC ipywidgets_p95_ms {percentile(base, 95):.1f}")
    print(f"METRIC ipywidgets_matplotlib_p50_ms {m50:.1f}")
    print(f"METRIC ratio_vs_ipywidgets_pil {b50 / p50:.1f}")
    if offsite:
        return "FAILED: off-host requests"
    return f"RATIO viewer_vs_ipywidgets {m50 / p50:.1f}"


if __name__ == "__main__":
    sys.exit(main())

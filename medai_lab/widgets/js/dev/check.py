"""Drive dev/harness.html in headless Chromium: load, screenshot, orientation, keys, presets, latency.

Usage: /work/main/.venv/bin/python medai_lab/widgets/js/dev/check.py [--nx 256 --ny 256 --nz 120] [--shot /tmp/x.png]
Needs `npm run build` first (it loads ../../static/viewer.js).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

WIDGETS = Path(__file__).resolve().parents[2]  # medai_lab/widgets
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(root: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(5)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nx", type=int, default=256)
    ap.add_argument("--ny", type=int, default=256)
    ap.add_argument("--nz", type=int, default=120)
    ap.add_argument("--query", default="")
    ap.add_argument("--shot", default="/tmp/medai_viewer.png")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="load + screenshot only")
    a = ap.parse_args()
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with serve(WIDGETS) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        url = f"{base}/js/dev/harness.html?nx={a.nx}&ny={a.ny}&nz={a.nz}{a.query}"
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_function("window.__medai_viewers && window.__medai_viewers.length > 0")
        page.wait_for_function("window.__medai_viewers[0].firstPaintMs !== null", timeout=120_000)
        first_paint = page.evaluate("window.__medai_viewers[0].firstPaintMs")
        page.evaluate("window.__medai_viewers[0].whenLoaded()")
        load_s = time.perf_counter() - t
        page.wait_for_timeout(300)
        st = page.evaluate("window.__medai_viewers[0].state()")
        print("state:", json.dumps(st))
        print(
            f"METRIC first_paint_ms {first_paint:.1f}  load_s {load_s:.2f}  "
            f"bytes_received {page.evaluate('window.__medai_viewers[0].bytesReceived')}  "
            f"render3d_ms {page.evaluate('window.__medai_viewers[0].render3dMs'):.1f}"
        )
        page.screenshot(path=a.shot)
        print("screenshot", a.shot)
        check(not errors, f"no page errors {errors[:3]}")
        check(all(u.startswith(base) for u in requests), "no requests outside the local server")
        check(st["level"] == 0, "full resolution loaded")
        ready = page.evaluate("window.__model.sent")
        check(ready == [{"type": "ready"}], f"ready sent once: {ready}")
        if a.quick:
            browser.close()
            return 1 if failures else 0

        nx, ny, nz = a.nx, a.ny, a.nz
        # Orientation: bright blob is on the patient's LEFT (low i) -> screen RIGHT in radiological axial.
        k = int(nz * 0.35)
        blob = [int(nx / 2 - nx * 0.22), int(ny / 2 + ny * 0.05), k]
        liver = [int(nx / 2 + nx * 0.2), int(ny / 2), int(nz * 0.32)]
        page.evaluate(f"window.__model.kernelSet('cursor', {blob})")
        page.wait_for_timeout(100)
        w = page.evaluate(
            "document.querySelector('[data-plane=axial]').getBoundingClientRect().width"
        )
        xy = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('axial', {blob})")
        check(
            xy[0] > w / 2, f"patient-left blob on screen right in axial (x={xy[0]:.0f} of {w:.0f})"
        )
        px = page.evaluate(f"window.__medai_viewers[0].sample('axial', {blob})")
        check(px[0] > 200 and px[1] > 180, f"blob pixel is bright/yellow-tinted {px}")
        xy = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('axial', {liver})")
        check(xy[0] < w / 2, "patient-right liver on screen left")
        pl = page.evaluate(f"window.__medai_viewers[0].sample('axial', {liver})")
        check(pl[0] > pl[2] + 40, f"liver overlay colour at liver {pl}")
        # Three planes agree at the crosshair.
        samples = {
            pl_: page.evaluate(f"window.__medai_viewers[0].sample('{pl_}', {blob})")
            for pl_ in ("axial", "coronal", "sagittal")
        }
        check(
            max(abs(samples["axial"][c] - samples[pl_][c]) for pl_ in samples for c in range(3))
            < 12,
            f"planes agree at crosshair {samples}",
        )
        # Neurological flips it.
        page.evaluate("window.__model.kernelSet('convention', 'neurological')")
        page.wait_for_timeout(50)
        xy = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('axial', {blob})")
        check(xy[0] < w / 2, "neurological: blob on screen left")
        letters = page.evaluate(
            "[...document.querySelectorAll('[data-pane=axial] .mv-letter')].map(e => e.textContent)"
        )
        check(letters == ["L", "R", "A", "P"], f"neurological letters {letters}")
        page.evaluate("window.__model.kernelSet('convention', 'radiological')")
        letters = page.evaluate(
            "[...document.querySelectorAll('[data-pane=axial] .mv-letter')].map(e => e.textContent)"
        )
        check(letters == ["R", "L", "A", "P"], f"radiological letters {letters}")

        # Preset changes pixel values.
        page.evaluate(f"window.__model.kernelSet('cursor', {liver})")
        before = page.evaluate(
            f"window.__medai_viewers[0].sample('coronal', [{liver[0]}, {liver[1]}, {int(nz * 0.8)}])"
        )
        page.click("button[data-preset=lung]")
        page.wait_for_timeout(50)
        after = page.evaluate(
            f"window.__medai_viewers[0].sample('coronal', [{liver[0]}, {liver[1]}, {int(nz * 0.8)}])"
        )
        check(before != after, f"lung preset changes pixels {before} -> {after}")
        check(
            page.evaluate("window.__model.get('window')") == [1500, -600],
            "window trait synced from preset",
        )
        check(page.evaluate("window.__model.get('preset')") == "lung", "preset trait synced")

        # Click sets the crosshair and the info line.
        box = page.locator("[data-plane=axial]").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        info = page.inner_text(".mv-info")
        check("voxel [" in info and "HU" in info and "RAS" in info, f"info line: {info}")
        cur = page.evaluate("window.__model.get('cursor')")
        check(cur[0] > nx / 2, f"clicked left half of axial -> patient right (i={cur[0]})")

        # Keys move the axial slice; latency.
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.evaluate("window.__medai_viewers[0].latencies.length = 0")
        k0 = page.evaluate("window.__medai_viewers[0].state().slices.axial")
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(50)
        check(
            page.evaluate("window.__medai_viewers[0].state().slices.axial") == k0 - 1,
            "ArrowDown moves axial slice",
        )
        page.evaluate("window.__medai_viewers[0].latencies.length = 0")
        for s in range(a.steps):
            page.keyboard.press("ArrowUp" if (s // 20) % 2 == 0 else "ArrowDown")
            page.wait_for_function(f"window.__medai_viewers[0].latencies.length >= {s + 1}")
        lat = page.evaluate("window.__medai_viewers[0].latencies")
        plat = page.evaluate("window.__medai_viewers[0].paintLatencies.slice(-%d)" % a.steps)
        print("latencies sorted:", [round(x, 1) for x in sorted(lat)[::5]])
        print(
            f"METRIC paint_latency_p50_ms {statistics.median(plat):.2f}  paint_latency_p95_ms {pct(plat, 95):.2f}"
        )
        print(
            f"METRIC slice_p50_ms {statistics.median(lat):.2f}  slice_p95_ms {pct(lat, 95):.2f}  max {max(lat):.2f}  n={len(lat)}"
        )
        # Pure paint cost (no frame wait): time N slice renders synchronously.
        paint = page.evaluate("""() => { const v = window.__medai_viewers[0]; const r = v.root;
            const ts = []; for (let i = 0; i < 60; i++) { const t = performance.now();
              r.dispatchEvent(new KeyboardEvent('keydown', {key: i % 2 ? 'ArrowUp' : 'ArrowDown', bubbles: true}));
              ts.push(performance.now() - t); } ts.sort((a, b) => a - b); return [ts[30], ts[57]]; }""")
        print(
            f"METRIC paint_p50_ms {paint[0]:.2f}  paint_p95_ms {paint[1]:.2f} (synchronous slice render)"
        )
        # Wheel too.
        k1 = page.evaluate("window.__medai_viewers[0].state().slices.axial")
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(80)
        check(
            page.evaluate("window.__medai_viewers[0].state().slices.axial") == k1 + 1,
            "wheel up moves axial slice up",
        )
        # Status trait.
        stt = page.evaluate("window.__model.get('status')")
        check(
            stt.get("level") == 0
            and stt.get("received") == stt.get("total")
            and stt.get("first_paint_ms"),
            f"status {stt}",
        )
        # 3D: anterior view, patient right (liver) on screen left, in the liver colour.
        x3 = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('3d', {liver})")
        w3 = page.evaluate(
            "document.querySelector('[data-plane=\"3d\"]').getBoundingClientRect().width"
        )
        c3 = page.evaluate(f"window.__medai_viewers[0].sample('3d', {liver})")
        check(x3[0] < w3 / 2 and c3[0] > c3[2] + 40, f"3D liver on screen left, orange {x3} {c3}")
        # Right-drag window/level, ctrl+wheel zoom, shift+drag pan.
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        w0 = page.evaluate("window.__model.get('window')")
        page.mouse.move(cx, cy)
        page.mouse.down(button="right")
        page.mouse.move(cx + 60, cy + 20, steps=4)
        page.mouse.up(button="right")
        page.wait_for_timeout(150)
        w1 = page.evaluate("window.__model.get('window')")
        check(
            w1 != w0
            and w1[0] > w0[0]
            and page.evaluate("window.__model.get('preset')") == "custom",
            f"right-drag window {w0} -> {w1}, preset custom",
        )
        v0 = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('axial', {blob})")
        page.keyboard.down("Control")
        page.mouse.wheel(0, -300)
        page.keyboard.up("Control")
        page.wait_for_timeout(50)
        z = page.evaluate("window.__medai_viewers[0].state().zoom.axial")
        check(z > 1.2, f"ctrl+wheel zooms axial ({z:.2f})")
        page.keyboard.down("Shift")
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 40, cy + 10, steps=3)
        page.mouse.up()
        page.keyboard.up("Shift")
        v1 = page.evaluate(f"window.__medai_viewers[0].voxelToCanvas('axial', {blob})")
        check(v1 != v0, f"zoom/pan moves the image {v0} -> {v1}")
        page.locator("[data-plane=axial]").dblclick()
        page.evaluate("window.__model.kernelSet('preset', 'liver')")
        check(
            page.evaluate("window.__medai_viewers[0].state().window") == [400, 50],
            "kernel preset -> window",
        )
        page.check(".mv-toolbar input[type=checkbox] >> nth=0")
        page.wait_for_timeout(50)
        page.screenshot(path=a.shot.replace(".png", "_outline.png"))
        check(page.evaluate("window.__model.get('outline')") is True, "outline toggle -> trait")
        page.uncheck(".mv-toolbar input[type=checkbox] >> nth=0")
        # Compare mode + hidden label + 3D rotate.
        page.select_option(".mv-toolbar select[title=overlay]", "compare")
        page.evaluate(f"window.__model.kernelSet('cursor', {liver})")
        page.wait_for_timeout(50)
        page.screenshot(path=a.shot.replace(".png", "_compare.png"))
        page.evaluate("window.__model.kernelSet('overlay_mode', 'labels')")
        page.click("input[data-label='1']")
        check(
            page.evaluate("window.__model.get('hidden_labels')") == [1],
            "legend toggle -> hidden_labels",
        )
        r3 = page.evaluate("window.__medai_viewers[0].renders3d")
        b3 = page.locator("[data-plane='3d']").bounding_box()
        page.mouse.move(b3["x"] + b3["width"] / 2, b3["y"] + b3["height"] / 2)
        page.mouse.down()
        page.mouse.move(b3["x"] + b3["width"] / 2 + 80, b3["y"] + b3["height"] / 2 + 30, steps=5)
        page.mouse.up()
        page.wait_for_timeout(100)
        check(page.evaluate("window.__medai_viewers[0].renders3d") > r3, "3D re-renders on rotate")
        print(f"METRIC render3d_ms {page.evaluate('window.__medai_viewers[0].render3dMs'):.1f}")
        page.click("input[data-label='1']")
        page.select_option(".mv-toolbar select[title=layout]", "sagittal")
        page.wait_for_timeout(100)
        page.screenshot(path=a.shot.replace(".png", "_sag.png"))
        check(not errors, f"no page errors at end {errors[:3]}")
        browser.close()
    print("FAILURES:", failures if failures else "none")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

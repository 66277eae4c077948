"""Head-to-head of the MedAI viewer and ipyniivue (anywidget + WebGL NiiVue) for bench_viewer.

Both widgets run in the same real JupyterLab server, each in its own notebook (own kernel) and
its own fresh Chromium (same flags, SwiftShader WebGL for both, so both can draw), one after the
other, on the same CT and label NIfTI files (``.nii.gz``, written once before the runs; both
widgets read them from disk in their kernel). The same page instrumentation measures both:

* **first paint**: from just before ``notebook:run-cell`` to the first frame with the image
  drawn: ours ``root.medai.paints > 0`` (may be a coarse level; full resolution is reported
  too); NiiVue the first WebGL draw after the image's 3-D texture was uploaded. Then a 1-pixel
  read-back (``getImageData`` / ``readPixels``) so the pixels exist, not just the commands.
* **loaded**: ours full resolution of every volume; NiiVue an ``image_loaded`` message from its
  front end for both volumes, seen by the kernel.
* **slice change**: ``--h2h-steps`` real mouse-wheel ticks over each widget's axial view; latency
  from the event's timestamp to the first paint after it (ours' paint counter, NiiVue's WebGL
  draws) plus the 1-pixel read-back, polled between tasks (no frame wait for either).
* **memory**: the page's JS heap after a forced GC (CDP ``Performance.getMetrics``
  ``JSHeapUsedSize``) and the proportional set size of every Chromium process (renderer + GPU
  process hold the volumes; textures live in the SwiftShader GPU process).
* **512x512x1000**: the same, once per widget, with a bounded wait: loaded or not.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

SWIFTSHADER = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
ROOT = "document.querySelector('[data-medai-viewer]')"

# WebGL draws / 3-D texture uploads counted for any widget; our viewer uses 2-D canvases only.
INSTRUMENT = """(() => {
  const h = (window.__h2h = { draws: 0, tex: [], gl: null, lat: [] });
  for (const C of [window.WebGL2RenderingContext, window.WebGLRenderingContext]) {
    if (!C) continue;
    for (const name of ['drawArrays', 'drawElements']) {
      const f = C.prototype[name];
      C.prototype[name] = function (...a) { h.draws++; h.gl = this; return f.apply(this, a); };
    }
    // NiiVue allocates with texStorage3D and fills with texSubImage3D (w, h, d at 5, 6, 7).
    for (const [name, at] of [['texImage3D', 3], ['texSubImage3D', 5]]) {
      const f = C.prototype[name];
      if (f) C.prototype[name] = function (...a) {
        h.tex.push({ n: a[at] * a[at + 1] * a[at + 2], t: performance.now(), draws: h.draws });
        return f.apply(this, a);
      };
    }
  }
})();"""

# Per widget: count() = paints so far, drawn(nvox) = image on screen, sync() = pixel read-back.
PROBES = {
    "medai": f"""({{
  count: () => {{ const r = {ROOT}; return r && r.medai ? r.medai.paints : 0; }},
  drawn: () => {{ const r = {ROOT}; return !!(r && r.medai && r.medai.paints > 0); }},
  sync: () => {{ const c = {ROOT}.querySelector('canvas[data-plane="axial"]');
                 c.getContext('2d').getImageData(0, 0, 1, 1); }},
}})""",
    "niivue": """({
  count: () => window.__h2h.draws,
  drawn: (nvox) => { const h = window.__h2h; const t = h.tex.find((x) => x.n >= nvox);
                     return !!t && h.draws > t.draws; },
  sync: () => { const g = window.__h2h.gl; g.readPixels(0, 0, 1, 1, g.RGBA, g.UNSIGNED_BYTE,
                                                          new Uint8Array(4)); },
})""",
}

JS_FIRST = """async ([run, probe, nvox, timeoutMs]) => {
  const P = eval(probe);
  const t0 = performance.now();
  eval(run);
  const tick = () => new Promise((r) => setTimeout(r, 0));
  while (performance.now() - t0 < timeoutMs) {
    if (P.drawn(nvox)) { P.sync(); return performance.now() - t0; }
    await tick();
  }
  return null;
}"""

JS_WHEEL_HOOK = """(probe) => {
  const P = eval(probe);
  const h = window.__h2h;
  h.lat = [];
  if (h.wheel) window.removeEventListener('wheel', h.wheel, true);
  h.wheel = (e) => {
    const t = e.timeStamp, c0 = P.count(), ch = new MessageChannel();
    ch.port1.onmessage = () => {
      if (P.count() > c0) { P.sync(); h.lat.push(performance.now() - t); ch.port1.close(); }
      else if (performance.now() - t < 5000) ch.port2.postMessage(0);
    };
    ch.port2.postMessage(0);
  };
  window.addEventListener('wheel', h.wheel, true);
}"""

NIIVUE_CELL = """from ipyniivue import NiiVue
nv = NiiVue(height=600)
loaded = []  # the front end's image_loaded messages (one per volume), seen before NiiVue's own
_handle = nv._handle_custom_msg  # handler (it replaces ipywidgets' on_msg dispatch)
def _seen(content, buffers):
    if content.get("event") == "image_loaded":
        loaded.append(1)
    _handle(content, buffers)
nv._handle_custom_msg = _seen
nv.load_volumes([{{"path": "{ct}"}},
                 {{"path": "{lab}", "colormap": "red", "opacity": 0.5, "cal_min": 0.5,
                   "cal_max": 3}}])
nv"""
MEDAI_CELL = 'from medai_lab.widgets import view\nw = view("{ct}", labels="{lab}")\nw'
WARM = {"medai": "import medai_lab.widgets", "niivue": "import ipyniivue"}
LOADED = {
    "medai": f"() => {{ const s = {ROOT}.medai.state(); return s.level === 0 && !s.loading; }}",
    "niivue": None,  # asked of the kernel: an image_loaded message for each volume
}


def write_case(folder: Path, nx: int, ny: int, nz: int, seed: int = 0) -> tuple[str, str]:
    """A CT-like int16 volume (body, liver, lungs, bone, noise) and its labels, as .nii.gz."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : ny * 1j, -1 : 1 : nx * 1j]
    body = (x / 0.85) ** 2 + (y / 0.65) ** 2 < 1
    ring = body & ((x / 0.85) ** 2 + (y / 0.65) ** 2 > 0.92)
    bone = (x**2 + (y - 0.45) ** 2 < 0.01) | ring
    vol = np.empty((nx, ny, nz), np.int16)
    lab = np.zeros((nx, ny, nz), np.uint8)
    for k in range(nz):
        z = 2 * k / max(nz - 1, 1) - 1
        liver = ((x + 0.35) / 0.3) ** 2 + ((y + 0.05) / 0.25) ** 2 + (z / 0.8) ** 2 < 1
        lung = (((abs(x) - 0.4) / 0.25) ** 2 + (y / 0.4) ** 2 < 1) & (z > 0.2)
        img = np.where(body, 40.0, -1000.0) + 20 * liver - 860 * lung + 700 * bone
        img += rng.normal(0, 15, img.shape)
        vol[:, :, k] = img.T.astype(np.int16)
        lab[:, :, k] = (1 * liver + 2 * (lung & ~liver) + 3 * (bone & ~liver)).T
    affine = np.diag([0.8, 0.8, 1.0, 1.0])
    names = f"ct_{nz}.nii.gz", f"labels_{nz}.nii.gz"
    nib.save(nib.Nifti1Image(vol, affine), folder / names[0])
    nib.save(nib.Nifti1Image(lab, affine), folder / names[1])
    return names


def _pss_kib(root_pid: int) -> int:
    """Proportional set size (KiB) of every descendant of ``root_pid`` named chromium."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            pid, rest = int(stat.parent.name), text.rsplit(")", 1)
            children.setdefault(int(rest[1].split()[1]), []).append(pid)
            names[pid] = text.split("(", 1)[1].split(")", 1)[0]
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if "chrom" in names.get(pid, ""):
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                continue
    return total


def _niivue_loaded(page: Any, execute: str, nb: str) -> bool:
    out = page.evaluate(execute, [nb, "print(len(loaded))"])
    return out.strip() == "2"


def contest(env: dict[str, Any], who: str, files: tuple[str, str], shape: tuple[int, ...],
            steps: int, timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """:func:`measure`, with a browser or driver that dies recorded as ``crashed`` (the big case
    can take a tab or Playwright's driver past its memory)."""
    try:
        return measure(env, who, files, shape, steps, timeout_s)
    except Exception as exc:  # the widget did not survive: that is the result
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"who": who, "shape": shape, "first_ms": None, "loaded_s": None, "crashed": line}


def measure(env: dict[str, Any], who: str, files: tuple[str, str], shape: tuple[int, ...],
            steps: int, timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """Open one widget on ``files`` in a fresh Chromium; first paint, load, slice p95, memory."""
    lab, pw, js = env["lab"], env["pw"], env["js"]
    nb = f"h2h_{who}_{shape[2]}.ipynb"
    cell = (MEDAI_CELL if who == "medai" else NIIVUE_CELL).format(ct=files[0], lab=files[1])
    lab.notebook(nb, [WARM[who], cell])
    browser = pw.chromium.launch(executable_path=env["chromium"], args=env["args"] + SWIFTSHADER)
    res: dict[str, Any] = {"who": who, "shape": shape}
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        context.route("**/*", env["guard"])
        context.add_init_script(INSTRUMENT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)[:300]))
        page.goto(f"{lab.url}/lab/tree/{nb}?reset&token={lab.token}", timeout=90_000)
        page.wait_for_function(js["ready"], arg=nb, timeout=90_000)
        page.evaluate(js["run_cell"], [nb, 0, 120_000])
        env["quiet"].wait()
        run = (f"(() => {{ const w = ({js['panel']})({nb!r}); window.jupyterapp.shell.activateById("
               "w.id); w.content.activeCellIndex = 1; window.jupyterapp.commands.execute("
               "'notebook:run-cell'); })()")  # fmt: skip
        t = time.perf_counter()
        probe, nvox = PROBES[who], int(np.prod(shape)) * 9 // 10
        res["first_ms"] = page.evaluate(JS_FIRST, [run, probe, nvox, timeout_s * 1000])
        res["loaded_s"] = None
        while res["first_ms"] is not None and time.perf_counter() - t < timeout_s:
            if LOADED[who] is not None:
                done = page.evaluate(LOADED[who])
            else:
                done = _niivue_loaded(page, js["execute"], nb)
            if done:
                res["loaded_s"] = time.perf_counter() - t
                break
            page.wait_for_timeout(250)
        if res["first_ms"] is None:  # nothing drawn: nothing else to measure
            res["errors"] = errors[-5:]
            if os.environ.get("MEDAI_BENCH_SHOTS"):
                page.screenshot(path=f"{os.environ['MEDAI_BENCH_SHOTS']}/h2h_{who}.png")
            return res
        if steps:
            res["lat"] = _wheel(page, who, probe, steps, env["quiet"])
        cdp = context.new_cdp_session(page)
        cdp.send("HeapProfiler.collectGarbage")
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        res["heap_mb"] = metrics["JSHeapUsedSize"] / 1e6
        res["pss_mb"] = _pss_kib(env["pid"]) / 1024
        context.close()
    finally:
        browser.close()
        lab.shutdown_kernels()
    return res


def _wheel(page: Any, who: str, probe: str, steps: int, quiet: Any) -> list[float]:
    """Wheel ticks over the widget's axial view; latencies (ms) event -> painted pixels."""
    if who == "medai":
        box = page.locator('[data-medai-viewer] canvas[data-plane="axial"]').bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    else:  # NiiVue's multiplanar layout on a wide canvas: axial is the big lower-left tile
        box = page.locator(".jp-OutputArea-output canvas").last.bounding_box()
        x, y = box["x"] + box["width"] * 0.26, box["y"] + box["height"] * 0.62
    page.mouse.move(x, y)
    page.evaluate(JS_WHEEL_HOOK, probe)
    quiet.wait()
    for n in range(steps):
        page.mouse.wheel(0, -100 if (n // 40) % 2 == 0 else 100)
        page.wait_for_function("(n) => window.__h2h.lat.length >= n", arg=n + 1, timeout=10_000)
    return page.evaluate("() => window.__h2h.lat")


def describe(r: dict[str, Any], pct: Any) -> None:
    """Print one widget's numbers (as soon as measured: a later crash keeps them)."""
    lat = r.get("lat") or []
    line = f"{r['who']:7s} {'x'.join(map(str, r['shape']))}: first paint "
    line += "none" if r.get("first_ms") is None else f"{r['first_ms'] / 1000:.2f} s"
    line += ", loaded " + ("no" if r.get("loaded_s") is None else f"{r['loaded_s']:.2f} s")
    if lat:
        line += f", slice p50 {statistics.median(lat):.1f} ms p95 {pct(lat, 95):.1f} ms"
    if "heap_mb" in r:
        line += f", JS heap {r['heap_mb']:.0f} MB, Chromium PSS {r['pss_mb']:.0f} MB"
    if r.get("crashed"):
        line += f", CRASHED: {r['crashed']}"
    print(line, flush=True)
    for e in r.get("errors") or []:
        print(f"  page error: {e[:300]}", flush=True)


def report(rows: list[dict[str, Any]], pct: Any) -> list[str]:
    """The RATIO lines (peer / ours, > 1: ours better) and the 512x512x1000 load metrics."""
    by = {(r["who"], r["shape"][2]): r for r in rows}
    ratios = []
    ours, peer = by.get(("medai", 300)), by.get(("niivue", 300))
    if ours and peer and peer.get("first_ms") and ours.get("first_ms"):
        ratios.append(("vs_niivue_first_paint", peer["first_ms"] / ours["first_ms"]))
        if peer.get("loaded_s") and ours.get("loaded_s"):
            ratios.append(("vs_niivue_loaded", peer["loaded_s"] / ours["loaded_s"]))
        if peer.get("lat") and ours.get("lat"):
            ratios.append(("vs_niivue_slice_p95", pct(peer["lat"], 95) / pct(ours["lat"], 95)))
        if "heap_mb" in peer and "heap_mb" in ours:
            ratios.append(("vs_niivue_js_heap", peer["heap_mb"] / ours["heap_mb"]))
            ratios.append(("vs_niivue_chromium_pss", peer["pss_mb"] / ours["pss_mb"]))
    for who in ("medai", "niivue"):
        big = by.get((who, 1000))
        if big:
            ok = big.get("loaded_s") is not None
            print(f"METRIC {who}_loads_512x512x1000 {int(ok)}")
    return [f"RATIO viewer_{name} {value:.2f}" for name, value in ratios]

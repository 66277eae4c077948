"""A 4-D image in real JupyterLab + Chromium: the frame slider shows each volume of the series.

The kernel holds a seeded 4-D array whose volumes differ; moving the slider (a real input on
the ``data-frame`` range) must reach the kernel (``w.frame``) and, once that volume arrived,
the axial canvas must show its grey values (the viewer's window ramp, computed here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("anywidget")

ROOT = "document.querySelector('[data-medai-viewer]')"
CELL = """
import numpy as np
from medai_lab.io import Volume
from medai_lab.widgets import view
rng = np.random.default_rng(4)
series = (rng.integers(0, 200, (48, 40, 6, 4)) + 300 * np.arange(4)).astype(np.int16)
w = view(Volume(series, np.diag([1.0, 1.0, 3.0, 1.0]), {"modality": "MR"}), layout="axial")
w
"""


def grey(values: np.ndarray, window: list[float]) -> np.ndarray:
    width, level = max(window[0], 1e-6), window[1]
    g = np.floor((values.astype(np.float64) - (level - width / 2)) * (255 / width) + 0.5)
    return np.clip(g, 0, 255).astype(int)


def test_the_frame_slider_shows_each_volume(browser, lab) -> None:
    pytest.importorskip("medai_lab.widgets.viewer")
    from ui.conftest import LabPage, guarded_page

    context, page = guarded_page(browser, 1200, 1000)
    try:
        ui = LabPage(page, lab).open("frames_ui.ipynb", [CELL])
        ui.run(timeout_s=120)
        page.wait_for_function(f"() => !!({ROOT} && {ROOT}.medai)", timeout=60_000)
        page.evaluate(f"() => {ROOT}.medai.whenLoaded()")
        out = ui.execute("import json; print(json.dumps(series.tolist()))")
        series = np.asarray(json.loads(out.strip().splitlines()[-1]))
        slider = page.locator("[data-medai-viewer] input[data-frame]")
        assert slider.is_visible() and slider.get_attribute("max") == "3"
        k = page.evaluate(f"() => {ROOT}.medai.state().cursor[2]")
        voxels = [(5, 7, k), (30, 12, k), (44, 33, k)]
        for t in (2, 1, 3):
            slider.fill(str(t))  # a real input event on the range
            page.wait_for_function(f"(t) => {ROOT}.medai.state().frame === t", arg=t)
            for _ in range(50):  # the slider's value is saved to the kernel within ~0.1 s
                if ui.execute("print(w.frame)").strip().splitlines()[-1] == str(t):
                    break
                page.wait_for_timeout(100)
            assert ui.execute("print(w.frame)").strip().splitlines()[-1] == str(t)
            window = page.evaluate(f"() => {ROOT}.medai.state().window")
            want = [int(grey(np.array(series[v][t]), window)) for v in voxels]
            page.wait_for_function(
                "([voxels, want]) => voxels.every((v, n) => {"
                f" const s = {ROOT}.medai.sample('axial', v); return s && s[0] === want[n]; }})",
                arg=[[list(v) for v in voxels], want],
                timeout=30_000,
            )
        errors = [line for line in page.console_lines if line.startswith("pageerror")]
        assert errors == [] and page.offsite.urls == []
    finally:
        context.close()

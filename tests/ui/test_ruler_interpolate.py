"""The distance ruler and interpolation between edited slices in real JupyterLab + Chromium.

A small synthetic CT with an anisotropic, offset affine is written as NIfTI and opened with
``view(path)``. Interpolation: strokes are painted with the mouse on two non-adjacent axial
slices, key ``I`` fills the slices between; the kernel's ``viewer.labels`` must change exactly
where the screen did (canvas pixels at each voxel centre), and match shape-based interpolation
computed here with SciPy's exact distance transform; Ctrl+Z undoes it in both. Ruler: two clicks
give ``viewer.measurements`` whose length equals the world distance of the clicked voxels from
the file's own affine (nibabel), shown on screen; Ctrl+Z removes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("PIL")

from ui.test_annotate import ROOT, Annotating, as_array, viewer_page

SHAPE = (64, 64, 24)
AFFINE = np.array([[0.7, 0, 0, -20.0], [0, 0.9, 0, 10.0], [0, 0, 2.0, 5.0], [0, 0, 0, 1]])
K0, K1 = 6, 12
BAND = 1e-6  # |blend| this close to 0 may round either way in the browser


@pytest.fixture(scope="module")
def annotating(browser, lab) -> Any:
    import nibabel as nib

    pytest.importorskip("medai_lab.widgets.viewer")

    rng = np.random.default_rng(3)
    ct = (rng.normal(40, 10, SHAPE)).astype(np.int16)
    nib.save(nib.Nifti1Image(ct, AFFINE), Path(lab.root) / "ruler_ct.nii.gz")
    cell = "\n".join([
        "from medai_lab.widgets import view",
        "w = view('ruler_ct.nii.gz', label_names={1: 'lesion'}, layout='axial')",
        "w",
    ])  # fmt: skip
    with viewer_page(browser, lab, "ruler_ui.ipynb", cell, (1200, 1200)) as an:
        yield an


def go_to(an: Annotating, k: int) -> None:
    an.ui.execute(f"w.cursor = [32, 32, {k}]")
    an.page.wait_for_function(f"(k) => {ROOT}.medai.state().cursor[2] === k", arg=k)
    an.page.evaluate(
        "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
    )


def blend_reference(labels: np.ndarray, value: int) -> tuple[np.ndarray, np.ndarray]:
    """Shape-based interpolation between K0 and K1 with SciPy: (fill, ambiguous) masks."""
    from scipy import ndimage

    sp = np.diag(AFFINE)[:2]

    def sdf(m: np.ndarray) -> np.ndarray:
        out = ndimage.distance_transform_edt(~m, sampling=sp)
        inside = ndimage.distance_transform_edt(m, sampling=sp)
        return out - inside

    a, b = sdf(labels[:, :, K0] == value), sdf(labels[:, :, K1] == value)
    fill, near = np.zeros(labels.shape, bool), np.zeros(labels.shape, bool)
    for k in range(K0 + 1, K1):
        t = (k - K0) / (K1 - K0)
        blend = (1 - t) * a + t * b
        fill[:, :, k] = (blend < -BAND) & (labels[:, :, k] == 0)
        near[:, :, k] = np.abs(blend) <= BAND
    return fill, near


def test_interpolation_fills_between_slices_where_the_screen_changed(annotating) -> None:
    an = annotating
    an.ui.execute("w.tool = 'paint'\nw.active_label = 1\nw.brush_radius = 4.0")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'paint'")
    go_to(an, K0)
    an.stroke((20, 20, K0), (30, 26, K0))
    go_to(an, K1)
    an.stroke((34, 30, K1), (44, 44, K1))
    before = as_array(an.kernel_labels(), SHAPE)
    assert before[:, :, K0].any() and before[:, :, K1].any()
    assert not before[:, :, K0 + 1 : K1].any()
    screens = {}
    for k in range(K0 + 1, K1):
        go_to(an, k)
        screens[k] = an.slice_pixels(k, SHAPE)

    sent = an.state()["edit"]["sent"]
    an.page.keyboard.press("i")
    an.page.wait_for_function(f"(n) => {ROOT}.medai.state().edit.sent > n", arg=sent)
    an.synced()
    after = as_array(an.kernel_labels(), SHAPE)
    changed = after != before
    assert all(changed[:, :, k].any() for k in range(K0 + 1, K1)), "a slice left empty"
    assert not changed[:, :, : K0 + 1].any() and not changed[:, :, K1:].any()
    assert set(np.unique(after[changed])) == {1}

    fill, near = blend_reference(before, 1)
    sure = ~near
    assert np.array_equal(changed[sure], fill[sure]), np.argwhere(changed != fill)[:5].tolist()

    for k in range(K0 + 1, K1):
        go_to(an, k)
        on_screen = np.abs(an.slice_pixels(k, SHAPE) - screens[k]).max(axis=2) > 2
        assert np.array_equal(on_screen, changed[:, :, k]), f"slice {k}"

    an.page.keyboard.press("Control+z")
    an.synced()
    assert np.array_equal(as_array(an.kernel_labels(), SHAPE), before)


def test_ruler_distance_is_the_world_distance(annotating) -> None:
    import json

    an = annotating
    go_to(an, K0)
    a, b = (10, 20, K0), (50, 33, K0)
    an.page.mouse.click(*an.xy(a))  # focus, then the ruler tool by key
    an.page.keyboard.press("m")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'ruler'")
    an.page.mouse.click(*an.xy(a))
    an.page.mouse.click(*an.xy(b))
    an.page.wait_for_function(f"() => {ROOT}.medai.state().measurements.length === 1")

    def kernel() -> list[dict[str, Any]]:
        return json.loads(an.ui.execute("import json; print(json.dumps(w.measurements))"))

    an.page.wait_for_function(f"() => {ROOT}.medai.state().measurements.length === 1")
    for _ in range(50):
        got = kernel()
        if got:
            break
        an.page.wait_for_timeout(100)
    assert len(got) == 1
    m = got[0]
    assert tuple(m["a"]) == a and tuple(m["b"]) == b
    world = np.linalg.norm(AFFINE[:3, :3] @ (np.subtract(b, a)))
    assert m["mm"] == pytest.approx(world, rel=1e-6)
    assert np.allclose(m["b_world"], (AFFINE @ [*b, 1])[:3])
    text = an.page.locator("[data-medai-viewer] [data-ruler]").inner_text()
    assert f"{world:.1f} mm" in text

    an.page.keyboard.press("Control+z")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().measurements.length === 0")
    for _ in range(50):
        if not kernel():
            break
        an.page.wait_for_timeout(100)
    assert kernel() == []
    an.page.keyboard.press("n")

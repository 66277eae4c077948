"""Annotation in real JupyterLab + Chromium: paint a stroke with the mouse, undo it, paint again,
and check that the kernel's ``viewer.labels`` changed exactly where the screen did.

The notebook opens the real Basel CT without labels, with a label dictionary. Strokes are real
mouse drags on the axial canvas (Playwright), shortcuts real key presses. "Where the screen
changed" is read from the ``data-plane`` canvas before and after (one pixel at each voxel
centre of the slice, positions from the page's ``voxelToCanvas``), independent of the kernel;
"where the kernel changed" from ``viewer.labels`` printed by the kernel.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("PIL")

ROOT = "document.querySelector('[data-medai-viewer]')"
LOAD_TIMEOUT_MS = 90_000
RADIUS_MM = 4.0
NAMES = {1: "liver", 2: "spleen"}


class Annotating:
    """The viewer in a notebook: page hooks, mouse strokes, canvas reads, kernel reads."""

    def __init__(self, ui: Any) -> None:
        self.ui, self.page = ui, ui.page
        self.canvas = self.page.locator('[data-medai-viewer] canvas[data-plane="axial"]')

    def js(self, body: str, arg: Any = None) -> Any:
        return self.page.evaluate(f"(arg) => {{ const m = {ROOT}.medai; {body} }}", arg)

    def state(self) -> dict[str, Any]:
        return self.js("return m.state();")

    def xy(self, ijk: tuple[int, int, int]) -> tuple[float, float]:
        """Page coordinates of a voxel centre on the axial canvas."""
        box = self.canvas.bounding_box()
        x, y = self.js("return m.voxelToCanvas('axial', arg);", list(ijk))
        return box["x"] + x, box["y"] + y

    def stroke(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
        sent = self.state()["edit"]["sent"]
        self.page.mouse.move(*self.xy(a))
        self.page.mouse.down()
        self.page.mouse.move(*self.xy(b), steps=12)
        self.page.mouse.up()
        self.page.wait_for_function(
            f"(n) => {ROOT}.medai.state().edit.sent > n", arg=sent, timeout=10_000
        )
        self.synced()

    def synced(self) -> None:
        """Wait until the kernel has applied every edit sent (its edit_seq came back)."""
        self.page.wait_for_function(
            f"() => {{ const e = {ROOT}.medai.state().edit; return e.acked === e.sent; }}",
            timeout=15_000,
        )
        self.page.evaluate(
            "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )

    def slice_pixels(self, k: int, shape: tuple[int, int, int]) -> np.ndarray:
        """RGB of the axial canvas at each voxel centre of slice k: array [i, j, 3]."""
        from PIL import Image

        data = self.js(
            """const c = m.root.querySelector('canvas[data-plane="axial"]');
               const r = c.getBoundingClientRect();
               return [c.toDataURL('image/png'), c.width / r.width,
                       m.voxelToCanvas('axial', [0, 0, arg]),
                       m.voxelToCanvas('axial', [10, 10, arg])];""",
            k,
        )
        rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(data[0].split(",", 1)[1]))))
        ratio = data[1]
        (x0, y0), (x1, y1) = data[2], data[3]
        kx, ky = (x1 - x0) / 10, (y1 - y0) / 10  # css px per voxel step along i and j
        assert abs(kx) * ratio >= 1 and abs(ky) * ratio >= 1, "pane too small: a pixel per voxel"
        i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        px = np.floor((x0 + kx * i) * ratio).astype(int)
        py = np.floor((y0 + ky * j) * ratio).astype(int)
        return rgb[py, px, :3].astype(int)

    def kernel_labels(self) -> dict[tuple[int, int, int], int]:
        code = (
            "import json, numpy as np\n"
            "nz = np.argwhere(w.labels)\n"
            "print(json.dumps([[*map(int, p), int(w.labels[tuple(p)])] for p in nz]))"
        )
        out = self.ui.execute(code).strip().splitlines()[-1]
        return {(a, b, c): v for a, b, c, v in json.loads(out)}


@contextlib.contextmanager
def viewer_page(browser, lab, name: str, cell: str, size=(1400, 1300)) -> Iterator[Annotating]:
    """A notebook ``name`` whose one cell shows a viewer, run and fully loaded; closed after."""
    from ui.conftest import LabPage, guarded_page

    context, page = guarded_page(browser, *size)
    try:
        ui = LabPage(page, lab).open(name, [cell])
        ui.run(timeout_s=120)
        page.wait_for_function(f"() => !!({ROOT} && {ROOT}.medai)", timeout=LOAD_TIMEOUT_MS)
        page.evaluate(f"() => {ROOT}.medai.whenLoaded()")
        page.wait_for_function(
            f"() => {{ const s = {ROOT}.medai.state(); return s.level === 0 && !s.loading; }}",
            timeout=LOAD_TIMEOUT_MS,
        )
        yield Annotating(ui)
    except Exception:
        print("\n".join(page.console_lines[-40:]))
        raise
    finally:
        context.close()


@pytest.fixture(scope="module")
def annotating(browser, lab, shared_data: Path):
    pytest.importorskip("medai_lab.widgets.viewer")
    from medai_lab.widgets.viewer import BUNDLE

    if not BUNDLE.is_file():
        pytest.fail(f"the viewer bundle {BUNDLE} is not built (make install builds it)")
    dicom = shared_data / "ct_series_basel" / "dicom"
    cell = "\n".join([
        "from medai_lab.widgets import view",
        f"w = view({str(dicom)!r}, label_names={NAMES!r}, layout='axial')",
        "w",
    ])  # fmt: skip
    with viewer_page(browser, lab, "annotate_ui.ipynb", cell) as an:
        yield an


def capsule(a, b, spacing, shape, k, radius) -> np.ndarray:
    """Voxels of slice k whose centre lies within ``radius`` mm of the segment a-b (in mm)."""
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    p = np.stack([i * spacing[0], j * spacing[1]], -1)
    pa = np.array([a[0] * spacing[0], a[1] * spacing[1]])
    pb = np.array([b[0] * spacing[0], b[1] * spacing[1]])
    d = pb - pa
    t = np.clip(((p - pa) @ d) / (d @ d), 0, 1)
    dist = np.linalg.norm(p - (pa + t[..., None] * d), axis=-1)
    return dist <= radius


def test_paint_undo_paint_changes_the_kernel_where_the_screen_changed(annotating) -> None:
    an = annotating
    st = an.state()
    shape = tuple(st["shape"])
    k = st["cursor"][2]
    spacing = an.ui.execute("print(list(w.scene.image.spacing))").strip().splitlines()[-1]
    spacing = json.loads(spacing)
    an.ui.execute(f"w.brush_radius = {RADIUS_MM}")
    an.page.wait_for_function(
        f"(r) => {ROOT}.medai.state().edit.brush_radius === r", arg=RADIUS_MM, timeout=10_000
    )
    before = an.slice_pixels(k, shape)

    # Shortcut B: paint; the picker: spleen (2).
    an.page.mouse.click(*an.xy(tuple(st["cursor"])))  # focus; the cursor stays where it is
    an.page.keyboard.press("b")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'paint'")
    an.page.locator("[data-medai-viewer] select[data-label-picker]").select_option("2")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.active_label === 2")
    a, b = (200, 240, k), (262, 285, k)
    an.stroke(a, b)
    painted = an.kernel_labels()
    after = an.slice_pixels(k, shape)
    on_screen = np.abs(after - before).max(axis=2) > 2
    in_kernel = np.zeros(shape[:2], bool)
    for (i, j, kk), value in painted.items():
        assert kk == k and value == 2, ((i, j, kk), value)
        in_kernel[i, j] = True
    assert in_kernel.sum() > 100
    assert np.array_equal(on_screen, in_kernel), (
        f"screen {on_screen.sum()} voxels, kernel {in_kernel.sum()}, "
        f"differ at {np.argwhere(on_screen != in_kernel)[:5].tolist()}"
    )
    # The stroke is the brush swept along the drag: the capsule, give or take a voxel.
    step = max(spacing[:2])
    assert (in_kernel >= capsule(a, b, spacing, shape, k, RADIUS_MM - step)).all()
    assert (in_kernel <= capsule(a, b, spacing, shape, k, RADIUS_MM + step)).all()
    assert an.ui.execute("print(w.tool, w.active_label)").split() == ["paint", "2"]
    assert an.state()["levels"]["labels3d"] == 0  # the 3D pane got a label volume to show

    # Undo (Ctrl+Z): the kernel is back to no labels, the screen to the first picture.
    an.page.keyboard.press("Control+z")
    an.synced()
    assert an.kernel_labels() == {}
    assert np.abs(an.slice_pixels(k, shape) - before).max() <= 2
    assert an.state()["edit"]["redo"] == 1

    # Paint again, liver (key 1), elsewhere: only this stroke is in the kernel.
    an.page.keyboard.press("1")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.active_label === 1")
    c, d = (300, 200, k), (330, 170, k)
    an.stroke(c, d)
    second = an.kernel_labels()
    now = an.slice_pixels(k, shape)
    on_screen = np.abs(now - before).max(axis=2) > 2
    in_kernel = np.zeros(shape[:2], bool)
    for (i, j, kk), value in second.items():
        assert kk == k and value == 1
        in_kernel[i, j] = True
    assert np.array_equal(on_screen, in_kernel)
    assert (in_kernel >= capsule(c, d, spacing, shape, k, RADIUS_MM - step)).all()
    assert not (in_kernel & capsule(a, b, spacing, shape, k, RADIUS_MM + step)).any()
    assert an.state()["edit"]["redo"] == 0  # a new stroke drops the redo stack
    # Diffs, not volumes: three edits of a few thousand voxels are a few kB.
    sent = an.state()["edit"]["bytes_sent"]
    assert 0 < sent < 20_000, sent


def liver_seed(shared_data: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The CT (RAS+, nibabel) and the deepest liver voxel of the slice with the most liver."""
    import nibabel as nib
    from scipy import ndimage
    from testsupport import canonical

    from medai_lab.io import load_series

    folder = shared_data / "ct_series_basel"
    ct, _ = canonical(load_series(folder / "dicom"))
    seg = nib.as_closest_canonical(nib.load(folder / "segmentation.nii.gz"))
    liver = np.asanyarray(seg.dataobj) == 5
    k = int(np.argmax(liver.sum(axis=(0, 1))))
    depth = ndimage.distance_transform_edt(liver[:, :, k])
    i, j = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return np.asarray(ct), (int(i), int(j), k)


def as_array(labels: dict, shape) -> np.ndarray:
    out = np.zeros(shape, np.int32)
    for ijk, value in labels.items():
        out[ijk] = value
    return out


def test_region_grow_and_fill_holes_match_an_independent_computation(
    annotating, shared_data: Path
) -> None:
    from scipy import ndimage

    an = annotating
    ct, seed = liver_seed(shared_data)
    shape = tuple(an.state()["shape"])
    k, tol, value = seed[2], 60.0, 1
    an.ui.execute(
        f"w.tool = 'navigate'\nw.cursor = {list(seed)!r}\nw.grow_tolerance = {tol}\n"
        f"w.active_label = {value}"
    )
    an.page.wait_for_function(
        f"(c) => {{ const s = {ROOT}.medai.state(), e = s.edit; return s.cursor[2] === c[2]"
        " && e.grow_tolerance === c[3] && e.active_label === 1 && e.tool === 'navigate'; }",
        arg=[*seed, tol],
    )
    before = as_array(an.kernel_labels(), shape)
    screen0 = an.slice_pixels(k, shape)
    an.page.mouse.click(*an.xy(seed))  # focus (a navigate click keeps the cursor here)
    an.page.keyboard.press("g")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'grow'")
    sent = an.state()["edit"]["sent"]
    an.page.mouse.click(*an.xy(seed))
    an.page.wait_for_function(f"(n) => {ROOT}.medai.state().edit.sent > n", arg=sent)
    an.synced()
    grown = as_array(an.kernel_labels(), shape)
    # Independently: the 4-connected component of the seed on slice k among voxels within the
    # tolerance of the seed's HU that were unlabelled or this label.
    s = ct[:, :, k].astype(float)
    allowed = (np.abs(s - s[seed[:2]]) <= tol) & np.isin(before[:, :, k], [0, value])
    comp, _ = ndimage.label(allowed)
    region = comp == comp[seed[:2]]
    want = before.copy()
    want[:, :, k][region] = value
    assert region.sum() > 200
    assert np.array_equal(grown, want), np.argwhere(grown != want)[:5].tolist()
    on_screen = np.abs(an.slice_pixels(k, shape) - screen0).max(axis=2) > 2
    assert np.array_equal(on_screen, (grown != before)[:, :, k])

    # Fill holes (key F): unlabelled voxels of the slice enclosed by the label.
    an.page.keyboard.press("f")
    an.page.wait_for_function(f"(n) => {ROOT}.medai.state().edit.sent > n", arg=sent + 1)
    an.synced()
    filled = as_array(an.kernel_labels(), shape)
    enclosed = ndimage.binary_fill_holes(grown[:, :, k] == value) & (grown[:, :, k] == 0)
    assert enclosed.any(), "the grown region has no hole to fill (pick another tolerance)"
    want = grown.copy()
    want[:, :, k][enclosed] = value
    assert np.array_equal(filled, want)

    # Two undos: back to the labels before the region grow.
    an.page.keyboard.press("Control+z")
    an.page.keyboard.press("Control+z")
    an.synced()
    assert np.array_equal(as_array(an.kernel_labels(), shape), before)
    an.page.keyboard.press("n")


MODEL = """
import hashlib
import numpy as np
from scipy import ndimage
seen = {}
def grow_model(roi, clicks):
    seen["roi"] = hashlib.sha256(roi.astype("<i2").tobytes()).hexdigest()
    c = tuple(int(x) for x in clicks[-1])
    near = np.abs(roi.astype(np.float32) - float(roi[c])) <= 60
    lab, _ = ndimage.label(near)
    return lab == lab[c]
w.assist = grow_model
w.assist_roi = (64, 64, 8)
"""


def test_a_model_proposal_is_a_preview_until_accepted(annotating, shared_data: Path) -> None:
    import hashlib

    from scipy import ndimage

    an = annotating
    ct, seed = liver_seed(shared_data)
    shape = tuple(an.state()["shape"])
    k, value = seed[2], 2
    an.ui.execute(MODEL + f"w.tool = 'navigate'\nw.cursor = {list(seed)!r}\nw.active_label = 2")
    an.page.wait_for_function(
        f"(c) => {{ const s = {ROOT}.medai.state();"
        " return s.cursor[2] === c && s.edit.active_label === 2 && s.edit.tool === 'navigate'; }",
        arg=k,
    )
    before = as_array(an.kernel_labels(), shape)
    screen0 = an.slice_pixels(k, shape)
    an.page.mouse.click(*an.xy(seed))  # focus
    an.page.keyboard.press("a")
    an.page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'assist'")
    asked = an.state()["edit"]["proposals"]
    an.page.mouse.click(*an.xy(seed))
    an.page.wait_for_function(
        f"(n) => {ROOT}.medai.state().edit.proposals > n", arg=asked, timeout=30_000
    )
    an.synced()
    # The region: 64x64x8 voxels centred on the click, kept inside the image.
    lo = [min(max(c - r // 2, 0), n - r) for c, n, r in zip(seed, shape, (64, 64, 8), strict=True)]
    crop = ct[lo[0] : lo[0] + 64, lo[1] : lo[1] + 64, lo[2] : lo[2] + 8]
    digest = an.ui.execute("print(seen['roi'])").strip().splitlines()[-1]
    assert digest == hashlib.sha256(crop.astype("<i2").tobytes()).hexdigest()
    c = tuple(s - o for s, o in zip(seed, lo, strict=True))
    comp, _ = ndimage.label(np.abs(crop.astype(np.float32) - float(crop[c])) <= 60)
    proposal = np.zeros(shape, bool)
    proposal[lo[0] : lo[0] + 64, lo[1] : lo[1] + 64, lo[2] : lo[2] + 8] = comp == comp[c]
    assert an.state()["edit"]["preview"] == proposal.sum() > 100
    assert np.array_equal(as_array(an.kernel_labels(), shape), before)  # only a preview
    on_screen = np.abs(an.slice_pixels(k, shape) - screen0).max(axis=2) > 2
    assert np.array_equal(on_screen, proposal[:, :, k])

    an.page.keyboard.press("Enter")  # accept
    an.synced()
    want = before.copy()
    want[proposal & np.isin(before, [0, value])] = value
    assert np.array_equal(as_array(an.kernel_labels(), shape), want)
    assert an.state()["edit"]["preview"] == 0

    # Another proposal, rejected (Escape): nothing changes; then undo the accepted one.
    asked = an.state()["edit"]["proposals"]
    an.page.mouse.click(*an.xy((seed[0] - 30, seed[1], k)))
    an.page.wait_for_function(
        f"(n) => {ROOT}.medai.state().edit.proposals > n", arg=asked, timeout=30_000
    )
    an.page.keyboard.press("Escape")
    assert an.state()["edit"]["preview"] == 0
    an.page.keyboard.press("Control+z")
    an.synced()
    assert np.array_equal(as_array(an.kernel_labels(), shape), before)
    an.ui.execute("w.tool = 'navigate'")


def test_paint_from_python_shows_and_undoes_in_the_browser(annotating) -> None:
    an = annotating
    st = an.state()
    shape, k = tuple(st["shape"]), st["cursor"][2]
    before = as_array(an.kernel_labels(), shape)
    screen0 = an.slice_pixels(k, shape)
    box = np.zeros(shape, bool)
    box[100:140, 300:320, k] = True
    n_undo = st["edit"]["undo"]
    an.ui.execute(
        "import numpy as np\nbox = np.zeros(w.scene.image.shape, bool)\n"
        f"box[100:140, 300:320, {k}] = True\nw.paint(box, 2)"
    )
    an.page.wait_for_function(
        f"(n) => {ROOT}.medai.state().edit.undo > n", arg=n_undo, timeout=15_000
    )
    an.synced()
    want = before.copy()
    want[box] = 2
    assert np.array_equal(as_array(an.kernel_labels(), shape), want)
    assert an.js("return m.labelAt(arg);", [120, 310, k]) == 2
    changed = np.abs(an.slice_pixels(k, shape) - screen0).max(axis=2) > 2
    assert np.array_equal(changed, (want != before)[:, :, k])
    an.page.mouse.click(*an.xy(tuple(st["cursor"])))  # focus (navigate: the cursor stays)
    an.page.keyboard.press("Control+z")  # the browser undoes the kernel's paint, in both
    an.synced()
    assert np.array_equal(as_array(an.kernel_labels(), shape), before)


def test_label_statistics_on_screen_agree_with_the_kernel(annotating) -> None:
    """The side panel's table (the browser's copy of the labels) and ``viewer.stats()``."""
    an = annotating
    an.page.locator('[data-medai-viewer] button[data-action="stats"]').click()
    shown = an.js(
        "return [...m.root.querySelectorAll('[data-stats] tr[data-value]')].map((r) => ({"
        " value: +r.dataset.value, voxels: +r.dataset.voxels, ml: +r.dataset.ml,"
        " mean: +r.dataset.mean, sd: +r.dataset.sd, text: r.textContent }));"
    )
    out = an.ui.execute("import json; print(json.dumps(w.stats()))").strip().splitlines()[-1]
    kernel = json.loads(out)
    assert kernel, "the earlier tests leave a painted stroke"
    assert [r["value"] for r in shown] == [r["value"] for r in kernel]
    for got, want in zip(shown, kernel, strict=True):
        assert got["voxels"] == want["voxels"]
        assert got["ml"] == pytest.approx(want["volume_ml"], rel=1e-5)  # meta spacing: 6 decimals
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-9)
        assert got["sd"] == pytest.approx(want["sd"], rel=1e-6, abs=1e-6)
        assert want["name"] in got["text"] and f"{want['volume_ml']:.2f}" in got["text"]


def test_no_page_errors_and_nothing_fetched(annotating) -> None:
    errors = [line for line in annotating.page.console_lines if line.startswith("pageerror")]
    assert errors == [], "\n".join(errors)
    assert annotating.page.offsite.urls == []

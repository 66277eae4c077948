"""The imaging viewer in real JupyterLab + Chromium, on the real Basel CT with its label map.

One notebook (module scope) runs ``view(<CT folder>, labels=<segmentation.nii.gz>)``; the tests
read the ``data-plane`` canvases back as PNG and compare them pixel by pixel with what
PROTOCOL.md says must be on screen, computed here independently of the widget's own code:
the CT loaded by ``medai_lab.io`` and the labels by nibabel, both reoriented to RAS+ by nibabel;
the grey ramp of the window; the overlay blend; the protocol's plane-to-screen mapping.

The canvas position of voxels comes from the page (``root.medai.voxelToCanvas``): from three
voxels per plane the test derives the plane's screen transform (scale and offset per axis), and
asserts that it is the protocol's (no mirroring, physical aspect ratio). Orientation is also
checked without it: the liver's colour is found in the raw pixels, left of the spleen's.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("anywidget")
pytest.importorskip("PIL")

PLANES = ("axial", "coronal", "sagittal")
# plane -> (slice axis, column axis, row axis) of the RAS+ array (PROTOCOL.md "Geometry")
AXES = {"axial": (2, 0, 1), "coronal": (1, 0, 2), "sagittal": (0, 1, 2)}
LIVER, SPLEEN = 5, 1
PRESETS = {"lung": (1500.0, -600.0), "bone": (1800.0, 400.0), "liver": (400.0, 50.0)}
LOAD_TIMEOUT_MS = 90_000
ROOT = "document.querySelector('[data-medai-viewer]')"


def _col_flip(plane: str, convention: str) -> bool:
    return plane == "sagittal" or convention == "radiological"


def plane_image(vol: np.ndarray, plane: str, convention: str, index: int) -> np.ndarray:
    """Slice ``index`` of ``vol`` as it must appear on screen: [row, column], full resolution."""
    s, _, _ = AXES[plane]
    img = np.take(vol, index, axis=s).T  # the remaining axes are (column, row): transpose
    img = img[::-1, :]  # rows: anterior / superior on top
    return img[:, ::-1] if _col_flip(plane, convention) else img


def plane_uv(plane: str, convention: str, shape: tuple, ijk: tuple) -> tuple[int, int]:
    """Column and row of voxel ``ijk`` in its plane image (PROTOCOL.md)."""
    _, c, r = AXES[plane]
    u = shape[c] - 1 - ijk[c] if _col_flip(plane, convention) else ijk[c]
    return u, shape[r] - 1 - ijk[r]


def grey(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """The viewer's grey ramp: round((v - (L - W/2)) * 255 / W), clipped."""
    width, level = max(window[0], 1e-6), window[1]
    g = np.floor((values.astype(np.float64) - (level - width / 2)) * (255 / width) + 0.5)
    return np.clip(g, 0, 255).astype(np.int32)


def blend(g: np.ndarray, colour: np.ndarray, opacity: float) -> np.ndarray:
    """Overlay blend of the viewer (8-bit fixed point): (g * (256 - a) + c * a) >> 8."""
    a = round(min(max(opacity, 0.0), 1.0) * 256)
    return (g[..., None] * (256 - a) + colour * a) >> 8


def texel_voxel(plane: str, convention: str, shape: tuple, got: dict, px: int, py: int, s: int):
    """The voxel that canvas pixel (px, py) of a :meth:`ViewerPage.shown` result displays."""
    _, c, r = AXES[plane]
    voxel = [0, 0, 0]
    u, v = int(got["u"][py, px]), int(got["v"][py, px])
    voxel[AXES[plane][0]] = s
    voxel[c] = shape[c] - 1 - u if _col_flip(plane, convention) else u
    voxel[r] = shape[r] - 1 - v
    return tuple(voxel)


@dataclass
class Fit:
    """Screen transform of one pane: css x = ox + kx * u, css y = oy + ky * v (u, v continuous)."""

    ox: float
    kx: float
    oy: float
    ky: float


@dataclass
class CT:
    image: np.ndarray  # RAS+ int16
    labels: np.ndarray  # RAS+ label values
    spacing: tuple[float, float, float]
    affine: np.ndarray


@pytest.fixture(scope="module")
def ct(shared_data: Path) -> CT:
    """The Basel CT and its label map, RAS+ (nibabel), independent of the widget's adapters."""
    import nibabel as nib
    from testsupport import canonical

    from medai_lab.io import load_series

    image, affine = canonical(load_series(shared_data / "ct_series_basel" / "dicom"))
    seg = nib.as_closest_canonical(
        nib.load(shared_data / "ct_series_basel" / "segmentation.nii.gz")
    )
    labels = np.asanyarray(seg.dataobj).astype(np.int32)
    assert labels.shape == image.shape and np.allclose(seg.affine, affine, atol=1e-3)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return CT(np.asarray(image), labels, spacing, affine)  # type: ignore[arg-type]


class ViewerPage:
    """The viewer open in a notebook: page hooks, kernel-side trait changes, canvas pixels."""

    def __init__(self, ui: Any, ct: CT) -> None:
        self.ui, self.page, self.ct = ui, ui.page, ct
        self.meta: dict[str, Any] = {}

    # --- page side -----------------------------------------------------------------------
    def js(self, body: str, arg: Any = None) -> Any:
        return self.page.evaluate(f"(arg) => {{ const m = {ROOT}.medai; {body} }}", arg)

    def state(self) -> dict[str, Any]:
        return self.js("return m.state();")

    def voxel_to_canvas(self, plane: str, ijk: tuple) -> tuple[float, float]:
        xy = self.js("return m.voxelToCanvas(arg[0], arg[1]);", [plane, [int(v) for v in ijk]])
        assert xy is not None, f"voxelToCanvas({plane}, {ijk}) gave null"
        return float(xy[0]), float(xy[1])

    def settle(self, timeout_ms: int = 10_000) -> None:
        """Wait until no frame has been painted for a few animation frames (bounded)."""
        self.page.evaluate(
            """async ([timeoutMs]) => {
                 const m = document.querySelector('[data-medai-viewer]').medai;
                 const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
                 const end = performance.now() + timeoutMs;
                 let last = m.paints, quiet = 0;
                 while (quiet < 4 && performance.now() < end) {
                   await frame();
                   quiet = m.paints === last ? quiet + 1 : 0;
                   last = m.paints;
                 }
               }""",
            [timeout_ms],
        )

    def snapshot(self, plane: str) -> tuple[np.ndarray, float]:
        """The plane's canvas as RGB [row, column] in device pixels, and device px per css px."""
        data = self.js(
            """const c = m.root.querySelector(`canvas[data-plane="${arg}"]`);
               const r = c.getBoundingClientRect();
               return [c.toDataURL('image/png'), c.width / r.width];""",
            plane,
        )
        from PIL import Image

        png = base64.b64decode(data[0].split(",", 1)[1])
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
        return rgb, float(data[1])

    def fit(self, plane: str, cursor: tuple, convention: str) -> Fit:
        """The pane's screen transform, derived from voxelToCanvas at three voxels."""
        shape = self.ct.image.shape
        _, c, r = AXES[plane]
        a = list(cursor)
        b = list(cursor)
        b[c] = shape[c] - 1 - cursor[c] if abs(shape[c] - 1 - 2 * cursor[c]) > 4 else 0
        b[r] = shape[r] - 1 - cursor[r] if abs(shape[r] - 1 - 2 * cursor[r]) > 1 else 0
        (xa, ya), (xb, yb) = self.voxel_to_canvas(plane, a), self.voxel_to_canvas(plane, b)
        (ua, va), (ub, vb) = (plane_uv(plane, convention, shape, p) for p in (a, b))
        kx, ky = (xb - xa) / (ub - ua), (yb - ya) / (vb - va)
        return Fit(xa - kx * (ua + 0.5), kx, ya - ky * (va + 0.5), ky)

    def shown(self, plane: str, cursor: tuple, convention: str) -> dict[str, Any]:
        """Canvas pixels and, for each, the plane-image texel it shows (-1 outside the image)."""
        rgb, ratio = self.snapshot(plane)
        f = self.fit(plane, cursor, convention)
        h, w = plane_image(self.ct.image, plane, convention, 0).shape
        ys, xs = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
        u = np.floor(((xs + 0.5) / ratio - f.ox) / f.kx).astype(int)
        v = np.floor(((ys + 0.5) / ratio - f.oy) / f.ky).astype(int)
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        return {"rgb": rgb, "u": u, "v": v, "inside": inside, "fit": f, "ratio": ratio}

    def expected(self, plane: str, cursor: tuple, convention: str, window, overlay: bool):
        """What the plane must show (RGB [row, column]) through ``cursor``."""
        s = AXES[plane][0]
        g = grey(plane_image(self.ct.image, plane, convention, cursor[s]), window)
        rgb = np.repeat(g[..., None], 3, axis=2)
        if overlay:
            lab = plane_image(self.ct.labels, plane, convention, cursor[s])
            colours = self.colours()
            opacity = float(self.meta.get("opacity", 0.5))
            for value, colour in colours.items():
                mask = lab == value
                if mask.any():
                    rgb[mask] = blend(g[mask], np.array(colour), opacity)
        return rgb

    def compare(self, plane: str, cursor: tuple, convention: str, window, overlay: bool):
        """Fraction of image pixels on the canvas that differ from the expected rendering."""
        got = self.shown(plane, cursor, convention)
        want = self.expected(plane, cursor, convention, window, overlay)
        inside = got["inside"]
        assert inside.sum() > 1000, f"{plane}: the image covers {inside.sum()} pixels"
        exp = want[got["v"][inside], got["u"][inside]]
        bad = np.abs(got["rgb"][inside] - exp).max(axis=1) > 2
        return float(bad.mean()), got

    def colours(self) -> dict[int, tuple[int, int, int]]:
        return {int(x["value"]): tuple(x["color"]) for x in self.meta["labels"]}

    # --- kernel side ---------------------------------------------------------------------
    def set(self, **traits: Any) -> None:
        """Set viewer traits from the kernel, then wait for the page to show them."""
        code = "\n".join(f"w.{k} = {v!r}" for k, v in traits.items())
        self.ui.execute(code)
        checks = {
            "cursor": "JSON.stringify(s.cursor) === JSON.stringify(arg.cursor)",
            "window": "Math.abs(s.window[0] - arg.window[0]) < 1e-6 && "
            "Math.abs(s.window[1] - arg.window[1]) < 1e-6",
            "convention": "s.convention === arg.convention",
            "overlay_mode": "s.overlay_mode === arg.overlay_mode",
        }
        conds = [checks[k] for k in traits if k in checks]
        if conds:
            self.page.wait_for_function(
                f"(arg) => {{ const s = {ROOT}.medai.state(); return {' && '.join(conds)}; }}",
                arg={k: list(v) if isinstance(v, tuple) else v for k, v in traits.items()},
                timeout=15_000,
            )
        self.settle()

    def traits(self) -> dict[str, Any]:
        names = ["meta", "window", "preset", "cursor", "convention", "overlay_mode", "opacity"]
        code = f"import json; print(json.dumps({{n: getattr(w, n) for n in {names!r}}}))"
        return json.loads(self.ui.execute(code).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def viewer(browser, lab, ct: CT, shared_data: Path):
    """The CT viewer open in JupyterLab, fully loaded (level 0), default traits."""
    pytest.importorskip("medai_lab.widgets.viewer")
    from medai_lab.widgets.viewer import BUNDLE
    from ui.conftest import LabPage, guarded_page

    if not BUNDLE.is_file():
        pytest.fail(f"the viewer bundle {BUNDLE} is not built (make install builds it)")
    folder = shared_data / "ct_series_basel"
    cell = "\n".join(
        [
            "from medai_lab.widgets import view",
            f"w = view({str(folder / 'dicom')!r}, labels={str(folder / 'segmentation.nii.gz')!r})",
            "w",
        ]
    )
    context, page = guarded_page(browser, 1600, 1400)
    try:
        ui = LabPage(page, lab).open("ct_viewer.ipynb", [cell])
        ui.run(timeout_s=120)
        page.wait_for_function(f"() => !!({ROOT} && {ROOT}.medai)", timeout=LOAD_TIMEOUT_MS)
        page.evaluate(
            """async ([timeoutMs]) => {
                 const m = document.querySelector('[data-medai-viewer]').medai;
                 let timer;
                 const late = new Promise((_, no) => {
                   timer = setTimeout(() => no(new Error('not loaded in time')), timeoutMs);
                 });
                 try {
                   await Promise.race([m.whenLoaded(), late]);
                 } finally {
                   clearTimeout(timer);
                 }
               }""",
            [LOAD_TIMEOUT_MS],
        )
        page.wait_for_function(
            f"() => {{ const s = {ROOT}.medai.state(); return s.level === 0 && !s.loading; }}",
            timeout=LOAD_TIMEOUT_MS,
        )
        vp = ViewerPage(ui, ct)
        vp.settle()
        vp.meta = vp.traits()["meta"]
        vp.meta["opacity"] = vp.traits()["opacity"]
        yield vp
    except Exception:
        print("\n".join(page.console_lines[-40:]))
        raise
    finally:
        context.close()


def _cursor_in_liver(ct: CT) -> tuple[int, int, int]:
    """A voxel deep inside the liver on the slice where the liver is largest."""
    from scipy import ndimage

    liver = ct.labels == LIVER
    k = int(np.argmax(liver.sum(axis=(0, 1))))
    depth = ndimage.distance_transform_edt(liver[:, :, k])
    i, j = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(i), int(j), k


def test_full_level_loads(viewer: ViewerPage, ct: CT) -> None:
    state = viewer.state()
    assert state.get("level") == 0, state
    assert list(viewer.meta["shape"]) == list(ct.image.shape)
    assert np.allclose(viewer.meta["affine"], ct.affine, atol=1e-3)
    status = viewer.traits()
    assert status["cursor"], status


def test_liver_colour_where_the_liver_is(viewer: ViewerPage, ct: CT) -> None:
    cursor = _cursor_in_liver(ct)
    viewer.set(convention="radiological", overlay_mode="labels", cursor=cursor)
    window = tuple(viewer.state()["window"])
    colour = np.array(viewer.colours()[LIVER])
    opacity = float(viewer.meta["opacity"])
    for plane in PLANES:
        bad, _ = viewer.compare(plane, cursor, "radiological", window, overlay=True)
        assert bad < 0.02, f"{plane}: {bad:.1%} of the pixels differ from the expected image"
    # At liver voxels of the axial slice (sampled away from the edges), the canvas shows the
    # liver colour blended over the voxel's grey.
    from scipy import ndimage

    k = cursor[2]
    core = ndimage.binary_erosion(ct.labels[:, :, k] == LIVER, iterations=4)
    ii, jj = np.nonzero(core)
    rng = np.random.default_rng(0)
    got = viewer.shown("axial", cursor, "radiological")
    for n in rng.choice(len(ii), size=25, replace=False):
        ijk = (int(ii[n]), int(jj[n]), k)
        x, y = viewer.voxel_to_canvas("axial", ijk)
        px, py = int(x * got["ratio"]), int(y * got["ratio"])
        voxel = texel_voxel("axial", "radiological", ct.image.shape, got, px, py, k)
        assert max(abs(a - b) for a, b in zip(voxel, ijk, strict=True)) <= 1, (ijk, voxel)
        # Nearest-neighbour sampling at a texel border may pick the voxel next to it.
        box = (slice(voxel[0] - 1, voxel[0] + 2), slice(voxel[1] - 1, voxel[1] + 2), k)
        near = ct.image[box].ravel()
        assert (ct.labels[box] == LIVER).all()
        wants = blend(grey(near, window), colour, opacity)
        pixel = got["rgb"][py, px]
        assert np.abs(wants - pixel).max(axis=1).min() <= 2, f"voxel {voxel}: pixel {pixel}"


def _centroid_x(rgb: np.ndarray, colour: np.ndarray, opacity: float) -> float:
    """Mean column of pixels that are ``colour`` blended over some grey level."""
    a = round(opacity * 256)
    g = (rgb * 256 - colour * a) / (256 - a)  # the grey each channel implies
    ok = (np.ptp(g, axis=2) <= 3) & (g.min(axis=2) >= -2) & (g.max(axis=2) <= 257)
    assert ok.sum() > 200, f"only {ok.sum()} pixels of colour {colour.tolist()}"
    return float(np.nonzero(ok)[1].mean())


@pytest.mark.parametrize("convention", ["radiological", "neurological"])
def test_liver_on_the_expected_side(viewer: ViewerPage, ct: CT, convention: str) -> None:
    cursor = _cursor_in_liver(ct)
    viewer.set(convention=convention, overlay_mode="labels", cursor=cursor)
    try:
        rgb, ratio = viewer.snapshot("axial")
        f = viewer.fit("axial", cursor, convention)
        assert f.kx > 0 and f.ky > 0, f"axial pane mirrored against PROTOCOL.md: {f}"
        sx, sy = ct.spacing[0], ct.spacing[1]
        assert abs((f.kx / f.ky) / (sx / sy) - 1) < 0.02, f"pixel aspect {f} vs spacing"
        opacity = float(viewer.meta["opacity"])
        liver_x = _centroid_x(rgb, np.array(viewer.colours()[LIVER]), opacity)
        spleen_x = _centroid_x(rgb, np.array(viewer.colours()[SPLEEN]), opacity)
        centre = (f.ox + f.kx * ct.image.shape[0] / 2) * ratio
        if convention == "radiological":  # patient right (liver) on screen left
            assert liver_x < centre < spleen_x, (liver_x, centre, spleen_x)
        else:
            assert spleen_x < centre < liver_x, (liver_x, centre, spleen_x)
        bad, _ = viewer.compare("axial", cursor, convention, tuple(viewer.state()["window"]), True)
        assert bad < 0.02, f"{convention}: {bad:.1%} of the axial pixels differ"
    finally:
        viewer.set(convention="radiological")


def test_key_press_changes_the_slice(viewer: ViewerPage, ct: CT) -> None:
    cursor = _cursor_in_liver(ct)
    viewer.set(convention="radiological", overlay_mode="labels", cursor=cursor)
    before, _ = viewer.snapshot("axial")
    n_lat = len(viewer.js("return m.latencies;"))
    # Clicking the crosshair point keeps the cursor and gives the axial pane the focus.
    x, y = viewer.voxel_to_canvas("axial", cursor)
    canvas = viewer.page.locator(f'{"[data-medai-viewer]"} canvas[data-plane="axial"]')
    canvas.click(position={"x": x, "y": y})
    viewer.page.keyboard.press("ArrowUp")
    viewer.page.wait_for_function(
        f"(k) => {ROOT}.medai.state().cursor[2] !== k", arg=cursor[2], timeout=5_000
    )
    viewer.settle()
    state = viewer.state()
    moved = tuple(state["cursor"])
    assert moved[:2] == cursor[:2] and abs(moved[2] - cursor[2]) == 1, (cursor, moved)
    after, _ = viewer.snapshot("axial")
    assert np.abs(after - before).max(axis=2).astype(bool).mean() > 0.05, "pixels did not change"
    bad, _ = viewer.compare("axial", moved, "radiological", tuple(state["window"]), True)
    assert bad < 0.02, f"new slice: {bad:.1%} of the pixels differ from slice {moved[2]}"
    assert len(viewer.js("return m.latencies;")) > n_lat


def test_quick_key_presses_each_move_one_slice(viewer: ViewerPage, ct: CT) -> None:
    """Ten presses in a row move ten slices (the kernel's echo of a saved cursor must not
    pull the slice back)."""
    cursor = _cursor_in_liver(ct)
    start = (cursor[0], cursor[1], 4)
    viewer.set(cursor=start)
    x, y = viewer.voxel_to_canvas("axial", start)
    viewer.page.locator('[data-medai-viewer] canvas[data-plane="axial"]').click(
        position={"x": x, "y": y}
    )
    for _ in range(10):
        viewer.page.keyboard.press("ArrowUp")
        viewer.page.wait_for_timeout(30)
    viewer.page.wait_for_timeout(1000)  # past the viewer's save interval and the echo
    viewer.settle()
    assert viewer.state()["cursor"] == [start[0], start[1], 14]
    assert viewer.traits()["cursor"] == [start[0], start[1], 14]  # the kernel agrees


def test_preset_buttons_change_the_pixels(viewer: ViewerPage, ct: CT) -> None:
    cursor = _cursor_in_liver(ct)
    viewer.set(overlay_mode="none", cursor=cursor)
    shots = {}
    for name in ("lung", "bone"):
        viewer.page.locator(f'[data-medai-viewer] button[data-preset="{name}"]').click()
        viewer.page.wait_for_function(
            f"(w) => {{ const s = {ROOT}.medai.state().window;"
            " return Math.abs(s[0] - w[0]) < 1e-6 && Math.abs(s[1] - w[1]) < 1e-6; }",
            arg=list(PRESETS[name]),
            timeout=5_000,
        )
        viewer.settle()
        bad, got = viewer.compare("axial", cursor, "radiological", PRESETS[name], overlay=False)
        assert bad < 0.02, f"{name}: {bad:.1%} of the pixels differ from the {name} window"
        shots[name] = got["rgb"][got["inside"]]
    changed = np.abs(shots["lung"] - shots["bone"]).max(axis=1) > 10
    assert changed.mean() > 0.2, f"only {changed.mean():.1%} of the pixels changed"
    assert viewer.traits()["preset"] == "bone"  # the click reached the kernel too


def test_three_planes_agree_at_the_crosshair(viewer: ViewerPage, ct: CT) -> None:
    """The pixel under the crosshair shows the cursor voxel's grey in all three planes."""
    viewer.page.locator('[data-medai-viewer] button[data-preset="liver"]').click()
    viewer.set(overlay_mode="none", window=PRESETS["liver"])
    rng = np.random.default_rng(1)
    shape = ct.image.shape
    for _ in range(3):
        cursor = tuple(int(rng.integers(n // 4, 3 * n // 4)) for n in shape)
        viewer.set(cursor=cursor)
        shown = {}
        for plane in PLANES:
            got = viewer.shown(plane, cursor, "radiological")
            x, y = viewer.voxel_to_canvas(plane, cursor)
            px, py = int(x * got["ratio"]), int(y * got["ratio"])
            # The texel that pixel shows (nearest neighbour): the cursor's, or, where the pane
            # shrinks the image, a neighbour within one voxel in the plane.
            s = cursor[AXES[plane][0]]
            voxel = texel_voxel(plane, "radiological", shape, got, px, py, s)
            assert max(abs(a - b) for a, b in zip(voxel, cursor, strict=True)) <= 1, (plane, voxel)
            want = grey(ct.image[voxel], PRESETS["liver"])
            assert np.abs(got["rgb"][py, px] - want).max() <= 1, (plane, cursor, voxel)
            shown[plane] = (tuple(voxel), int(got["rgb"][py, px][0]))
        same = [g for voxel, g in shown.values() if voxel == cursor]
        assert len(set(same)) <= 1, f"planes disagree at {cursor}: {shown}"
        if all(voxel == cursor for voxel, _ in shown.values()):
            assert len(set(g for _, g in shown.values())) == 1, shown


def test_nothing_fetched_from_the_network(viewer: ViewerPage) -> None:
    assert viewer.page.offsite.urls == []


def test_no_page_errors(viewer: ViewerPage) -> None:
    errors = [line for line in viewer.page.console_lines if line.startswith("pageerror")]
    assert errors == [], "\n".join(errors)

"""Save labels from the MedAI Viewer document in a real JupyterLab + Chromium.

A NIfTI is opened as a MedAI Viewer document (prebuilt labextension + server extension, as the
distribution configures them), a stroke is painted with the mouse, and the toolbar's "Save
labels" writes ``scan_labels.nii.gz`` beside the image through ``POST medai-lab/api/labels``.
The file must hold exactly the browser's labels (read voxel by voxel from the page) on the
image's world grid (nibabel); after an undo, saving again replaces it with an empty map.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import LabServer, _jupyter_env, guarded_page, running_lab
from .test_lab_extension import LABEXT, _install_into

SHAPE = (48, 40, 12)
AFFINE = np.array([[0.9, 0, 0, -21.0], [0, 0.9, 0, -18.0], [0, 0, 3.0, 10.0], [0, 0, 0, 1]])
VIEWER = '[data-medai-viewer-path="scan.nii.gz"]'
ROOT = f"document.querySelector('{VIEWER} [data-medai-viewer]')"


@pytest.fixture(scope="module")
def saving_lab(
    _ui_components: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    import nibabel as nib

    if not (LABEXT / "package.json").is_file():
        from testsupport import missing_component

        missing_component(f"the built labextension at {LABEXT} (npm run build in labext/)")
    base = tmp_path_factory.mktemp("medai-save")
    root = base / "root"
    root.mkdir()
    i, j = np.mgrid[: SHAPE[0], : SHAPE[1]]
    disc = ((i - 24) ** 2 + (j - 20) ** 2 < 15**2)[:, :, None]
    ct = np.where(disc, 60, -900) + np.zeros(SHAPE)
    nib.save(nib.Nifti1Image(ct.astype(np.int16), AFFINE), root / "scan.nii.gz")
    env = _jupyter_env(base)
    _install_into(env, base)
    with running_lab(base, root, env) as server:
        yield server


@pytest.fixture
def viewer_doc(browser: Any, saving_lab: LabServer) -> Iterator[Any]:
    context, page = guarded_page(browser, 1300, 1100)
    try:
        page.goto(f"{saving_lab.url}/lab/workspaces/save?reset&token={saving_lab.token}",
                  wait_until="domcontentloaded")  # fmt: skip
        page.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
        page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open',"
                      " {path: 'scan.nii.gz', factory: 'MedAI Viewer'})")  # fmt: skip
        page.wait_for_selector(f'{VIEWER}[data-medai-viewer-state="done"]', timeout=120_000)
        page.wait_for_function(f"() => !!({ROOT} && {ROOT}.medai)", timeout=30_000)
        page.evaluate(f"() => {ROOT}.medai.whenLoaded()")
        yield page
    except Exception:
        print("\n".join(page.console_lines[-40:]) + "\n" + saving_lab.log_tail(2000))
        raise
    finally:
        context.close()


def browser_labels(page: Any) -> np.ndarray:
    """The page's label volume, voxel by voxel (labelAt), as an x-y-z array."""
    flat = page.evaluate(
        f"""(n) => {{ const m = {ROOT}.medai, out = [];
             for (let k = 0; k < n[2]; k++) for (let j = 0; j < n[1]; j++)
               for (let i = 0; i < n[0]; i++) out.push(m.labelAt([i, j, k]) ?? 0);
             return out; }}""",
        list(SHAPE),
    )
    return np.asarray(flat, np.uint16).reshape(SHAPE, order="F")


def save(page: Any) -> str:
    button = page.locator(".medai-ViewerDocument [data-medai-save-labels]").first
    page.evaluate("() => document.querySelectorAll('[data-medai-saved]')"
                  ".forEach((e) => e.removeAttribute('data-medai-saved'))")  # fmt: skip
    button.click()
    page.wait_for_selector(".medai-ViewerDocument [data-medai-saved]", timeout=30_000)
    return button.get_attribute("data-medai-saved") or ""


def test_save_labels_writes_the_painted_voxels_beside_the_image(
    viewer_doc: Any, saving_lab: LabServer
) -> None:
    import nibabel as nib

    page = viewer_doc
    k = page.evaluate(f"() => {ROOT}.medai.state().cursor[2]")
    box = page.locator(f'{VIEWER} canvas[data-plane="axial"]').bounding_box()

    def xy(ijk: tuple[int, int, int]) -> tuple[float, float]:
        x, y = page.evaluate(f"(v) => {ROOT}.medai.voxelToCanvas('axial', v)", list(ijk))
        return box["x"] + x, box["y"] + y

    page.mouse.click(*xy((24, 20, k)))  # focus the view
    page.keyboard.press("b")
    page.wait_for_function(f"() => {ROOT}.medai.state().edit.tool === 'paint'")
    page.mouse.move(*xy((14, 12, k)))
    page.mouse.down()
    page.mouse.move(*xy((30, 26, k)), steps=10)
    page.mouse.up()
    page.wait_for_function(f"() => {ROOT}.medai.state().edit.strokes >= 1")
    painted = browser_labels(page)
    assert painted[:, :, k].sum() > 20 and painted.sum() == painted[:, :, k].sum()

    assert save(page) == "scan_labels.nii.gz", saving_lab.log_tail(1500)
    written = nib.load(saving_lab.root / "scan_labels.nii.gz")
    canon = nib.as_closest_canonical(nib.load(saving_lab.root / "scan.nii.gz"))
    np.testing.assert_allclose(written.affine, canon.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj), painted)

    page.locator(f'{VIEWER} button[data-action="undo"]').click()  # focus is on the toolbar
    page.wait_for_function(f"() => {ROOT}.medai.state().edit.undo === 0")
    assert save(page) == "scan_labels.nii.gz"
    assert not np.asarray(nib.load(saving_lab.root / "scan_labels.nii.gz").dataobj).any()
    names = sorted(p.name for p in Path(saving_lab.root).iterdir())
    # No temporary file left (Lab's own checkpoint folder aside).
    assert [n for n in names if n != ".ipynb_checkpoints"] == ["scan.nii.gz", "scan_labels.nii.gz"]
    assert page.offsite.urls == []

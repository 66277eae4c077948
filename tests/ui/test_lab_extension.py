"""MedAI Lab in a real JupyterLab + Chromium: launcher cards, viewer, GPU item, MLflow UI.

The server runs as the distribution configures it: the server extension enabled through the
shipped ``jupyter_server_config.d`` file, the prebuilt labextension (``medai_lab/labextension``),
the ``mlflow`` jupyter-server-proxy entry point, and ``MLFLOW_TRACKING_URI`` on a temporary store.
Where the package is installed without them (an editable install predating them) the same files
are put in the server's temporary Jupyter folders. Screenshots go to ``$MEDAI_UI_ARTIFACTS`` (or
the test's temporary folder), never into git.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from .conftest import LabServer, _jupyter_env, guarded_page, running_lab

REPO = Path(__file__).resolve().parents[2]
LABEXT = REPO / "medai_lab" / "labextension"
MLFLOW_START_S = 240  # first start creates the SQLite schema; two shared cores are slow


def _install_into(env: dict[str, str], base: Path) -> None:
    """Put what the wheel installs into the temporary Jupyter folders when the venv lacks it."""
    conf = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.d"
    conf.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "jupyter-config" / "jupyter_server_config.d" / "medai_lab.json", conf)
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "medai-lab"
    if not installed.exists():
        target = Path(env["JUPYTER_DATA_DIR"]) / "labextensions" / "medai-lab"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(LABEXT, target_is_directory=True)
    if not any(e.name == "mlflow" for e in entry_points(group="jupyter_serverproxy_servers")):
        (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py").write_text(
            "from medai_lab.server.proxy import mlflow_server\n"
            "c.ServerProxy.servers = {'mlflow': mlflow_server()}\n"
        )
    from medai_lab.server.templates import find_template

    if find_template("lung") is None:  # template notebooks not written yet: a stand-in
        import nbformat

        folder = base / "templates"
        folder.mkdir()
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("task = 'lung'")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        nbformat.write(nb, folder / "lung.ipynb")
        env["MEDAI_LAB_TEMPLATES"] = str(folder)


@pytest.fixture(scope="module")
def medai_lab(
    _ui_components: None, tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> Iterator[LabServer]:
    if not (LABEXT / "package.json").is_file():
        from testsupport import missing_component

        missing_component(f"the built labextension at {LABEXT} (npm run build in labext/)")
    base = tmp_path_factory.mktemp("medai-lab")
    root = base / "root"
    root.mkdir()
    shutil.copytree(shared_data / "ct_series_basel" / "dicom", root / "ct", symlinks=False)
    shutil.copyfile(sorted((root / "ct").iterdir())[10], root / "slice.dcm")
    from medai_lab.datasets.phantom import write_phantom_dataset

    write_phantom_dataset(root / "chest", "lung", 1, progress=False)  # imagesTr/ + labelsTr/
    env = _jupyter_env(base)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{base / 'mlflow' / 'mlflow.db'}"
    _install_into(env, base)
    with running_lab(base, root, env) as server:
        yield server


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("MEDAI_UI_ARTIFACTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def lab_ui(browser: Any, medai_lab: LabServer) -> Iterator[Any]:
    """A page on a fresh workspace (so the launcher shows; the token in the URL sets the login
    cookie)."""
    context, page = guarded_page(browser)
    workspace = f"t{secrets.token_hex(4)}"
    try:
        page.goto(f"{medai_lab.url}/lab/workspaces/{workspace}?token={medai_lab.token}",
                  wait_until="domcontentloaded")  # fmt: skip
        page.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
        page.wait_for_selector(".jp-Launcher", timeout=90_000)
        yield page
    finally:
        context.close()


def _section(page: Any) -> Any:
    return page.locator(".jp-Launcher-section", has=page.locator("h2", has_text="MedAI Lab"))


def _fail_info(page: Any, lab: LabServer) -> str:
    return "\n".join(page.console_lines[-20:]) + "\n" + lab.log_tail(2000)


def test_launcher_has_the_medai_lab_cards(lab_ui: Any, medai_lab: LabServer, artifacts) -> None:
    section = _section(lab_ui)
    section.wait_for(timeout=30_000)
    labels = section.locator(".jp-LauncherCard-label").all_inner_texts()
    lab_ui.screenshot(path=str(artifacts / "launcher.png"))
    for label in ("Lung", "Liver", "Heart", "PACS & de-identification", "Hackathon", "MLflow"):
        assert any(label in t for t in labels), (label, labels)
    assert lab_ui.offsite.urls == []


def test_lung_card_opens_a_new_notebook(lab_ui: Any, medai_lab: LabServer, artifacts) -> None:
    before = set(medai_lab.root.glob("lung*.ipynb"))
    _section(lab_ui).locator(".jp-LauncherCard", has_text="Lung").first.click()
    deadline = time.monotonic() + 30
    while not (made := set(medai_lab.root.glob("lung*.ipynb")) - before):
        assert time.monotonic() < deadline, "no lung*.ipynb was created\n" + _fail_info(
            lab_ui, medai_lab
        )
        time.sleep(0.2)
    (path,) = made
    lab_ui.wait_for_function(
        """(name) => [...window.jupyterapp.shell.widgets('main')].some(
             w => w.context && w.context.path === name && w.content && w.content.model)""",
        arg=path.name,
        timeout=30_000,
    )
    lab_ui.screenshot(path=str(artifacts / "lung-notebook.png"))


def _non_black(page: Any, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector('[data-medai-viewer-state="done"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
          const c = document.querySelector(
            '[data-medai-viewer-state="done"] canvas[data-plane="axial"]');
          if (!c || !c.width || !c.height) return false;
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let bright = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
          return bright > (c.width * c.height) / 20;
        }""",
        timeout=30_000,
    )


def _open_file_browser(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    page.wait_for_selector(".jp-DirListing-item", timeout=30_000)


def _item(page: Any, name: str) -> Any:
    return page.locator(".jp-DirListing-item", has=page.locator(
        ".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")))  # fmt: skip


def _menu_item(page: Any, text: str | re.Pattern[str]) -> Any:
    item = page.locator(".lm-Menu-item", has_text=text).last
    try:
        item.wait_for(timeout=10_000)
    except Exception as exc:
        shown = page.locator(".lm-Menu-item").all_inner_texts()
        raise AssertionError(f"no menu item {text!r}; the menu shows {shown}") from exc
    return item


def test_viewer_on_the_real_ct_folder(lab_ui: Any, medai_lab: LabServer, artifacts) -> None:
    _open_file_browser(lab_ui)
    _item(lab_ui, "ct").click(button="right")
    _menu_item(lab_ui, "MedAI Viewer").click()
    try:
        _non_black(lab_ui)
    finally:
        lab_ui.screenshot(path=str(artifacts / "viewer-ct.png"))
    assert lab_ui.offsite.urls == []


def test_open_with_medai_viewer_on_a_ct_slice(lab_ui: Any, medai_lab: LabServer, artifacts) -> None:
    _open_file_browser(lab_ui)
    _item(lab_ui, "slice.dcm").click(button="right")
    _menu_item(lab_ui, "Open With").hover()
    _menu_item(lab_ui, re.compile("^MedAI Viewer$")).click()
    try:
        _non_black(lab_ui)
    finally:
        lab_ui.screenshot(path=str(artifacts / "viewer-slice.png"))


def test_gpu_item_says_cpu_only(lab_ui: Any, medai_lab: LabServer) -> None:
    gpus = medai_lab.api("GET", "/medai-lab/api/gpus")
    item = lab_ui.locator("[data-medai-gpu]")
    if gpus["cpu_only"]:
        lab_ui.wait_for_selector('[data-medai-gpu="cpu-only"]', timeout=30_000)
        assert "CPU only" in item.inner_text()
    else:
        lab_ui.wait_for_selector('[data-medai-gpu="ok"]', timeout=30_000)
        assert "GPU0" in item.inner_text()
    share = medai_lab.api("GET", "/medai-lab/api/share")  # the server's CPU share, beside the GPU
    assert share["cpus"] > 0 and share["threads"] >= 1
    cpus = share["cpus"]
    text = str(int(cpus)) if float(cpus).is_integer() else f"{cpus:.1f}"
    assert f"{text} CPU" in item.inner_text()
    assert float(item.get_attribute("data-medai-cpus") or "nan") == cpus


def test_mlflow_item_opens_the_ui_through_the_proxy(
    lab_ui: Any, medai_lab: LabServer, artifacts
) -> None:
    api_ok: list[str] = []
    lab_ui.context.on(
        "response",
        lambda r: api_ok.append(r.url) if "/mlflow/ajax-api/" in r.url and r.ok else None,
    )
    card = _section(lab_ui).locator(".jp-LauncherCard", has_text="MLflow").first
    try:
        # Playwright reports a popup once its first navigation commits: after MLflow started.
        with lab_ui.context.expect_page(timeout=MLFLOW_START_S * 1000) as popup:
            card.click()
        tab = popup.value
    except Exception as exc:
        raise AssertionError("no MLflow tab opened\n" + _fail_info(lab_ui, medai_lab)) from exc
    try:
        tab.wait_for_load_state("domcontentloaded", timeout=MLFLOW_START_S * 1000)
        assert tab.url.startswith(f"{medai_lab.url}/mlflow/"), tab.url
        tab.wait_for_function(
            "() => document.title.includes('MLflow')", timeout=MLFLOW_START_S * 1000
        )
        tab.wait_for_function(
            "() => (document.querySelector('#root')?.innerText || '').length > 20",
            timeout=60_000,
        )
        deadline = time.monotonic() + 60
        while not api_ok and time.monotonic() < deadline:
            tab.wait_for_timeout(250)
        assert api_ok, "no MLflow API call went through the proxy\n" + medai_lab.log_tail(3000)
    finally:
        tab.screenshot(path=str(artifacts / "mlflow.png"))
    # The proxy is behind Jupyter's authentication: no cookie, no token, no MLflow.
    conn = http.client.HTTPConnection("127.0.0.1", int(medai_lab.url.rsplit(":", 1)[1]), timeout=30)
    try:
        conn.request("GET", "/mlflow/")
        answer = conn.getresponse()
        assert answer.status in (302, 401, 403), answer.status
        assert b"<title>MLflow" not in answer.read()
    finally:
        conn.close()


def _viewer_doc(page: Any, suffix: str) -> str:
    """JS expression: the MedAI Viewer document widget whose path ends with ``suffix``."""
    return (
        "[...window.jupyterapp.shell.widgets('main')].find(w => w.context && "
        f"w.context.path.endsWith({suffix!r}) && w.hasClass('medai-ViewerDocument'))"
    )


def test_ct_from_the_file_browser_window_badge_and_labels(
    lab_ui: Any, medai_lab: LabServer, artifacts
) -> None:
    """A chest CT opened from the file browser: lung window, no false "read-only" claim, and
    "Add labels…" overlays the label map picked by path."""
    image, labels = "chest/imagesTr/lung_000.nii.gz", "chest/labelsTr/lung_000.nii.gz"
    lab_ui.evaluate(
        "(p) => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: p})",
        "chest/imagesTr/",
    )
    _item(lab_ui, "lung_000.nii.gz").dblclick()  # the default viewer for .nii.gz
    doc = _viewer_doc(lab_ui, image)
    panel = f'[data-medai-viewer-path="{image}"]'
    try:
        lab_ui.wait_for_selector(f'{panel}[data-medai-viewer-state="done"]', timeout=120_000)
        lab_ui.wait_for_function(f"() => {{ const w = {doc}; return w && w.context.isReady; }}")
        on = lab_ui.locator(f"{panel} [data-medai-viewer] button[data-preset].mv-on")
        assert on.get_attribute("data-preset") == "lung", _fail_info(lab_ui, medai_lab)
        toolbar = lab_ui.locator(".medai-ViewerDocument .jp-Toolbar").first.inner_text()
        assert "read-only" not in toolbar, toolbar

        def add_labels(path: str) -> str:
            lab_ui.locator(".medai-ViewerDocument [data-medai-add-labels]").first.click()
            field = lab_ui.locator(".jp-Dialog input")
            field.wait_for(timeout=10_000)
            offered = field.input_value()
            field.fill(path)
            lab_ui.locator(".jp-Dialog .jp-mod-accept").click()
            return offered

        # a label file that is not there: said in a notification, the image stays
        add_labels("chest/labelsTr/missing.nii.gz")
        toast = lab_ui.locator(".Toastify__toast", has_text="missing.nii.gz")
        toast.first.wait_for(timeout=60_000)
        back = f'{panel}[data-medai-viewer-labels=""][data-medai-viewer-state="done"]'
        lab_ui.wait_for_selector(back, timeout=120_000)

        assert add_labels(labels) == labels  # the MSD twin is offered first
        done = f'[data-medai-viewer-labels="{labels}"][data-medai-viewer-state="done"]'
        lab_ui.wait_for_selector(done, timeout=120_000)
        volumes = lab_ui.evaluate(f"() => {doc}.content.model.get('meta').volumes")
        assert "labels" in volumes, volumes
        mode = lab_ui.evaluate(f"() => {doc}.content.model.get('overlay_mode')")
        assert mode == "labels"
        kept = lab_ui.evaluate(f"() => {doc}.content.model.get('preset')")
        assert kept == "lung"
    finally:
        lab_ui.screenshot(path=str(artifacts / "viewer-chest-labels.png"))
    assert lab_ui.offsite.urls == []

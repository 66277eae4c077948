"""A notebook with a viewer, executed by a real kernel and exported by nbconvert, still shows the
three planes as a PNG (GitHub and HTML exports have no live widget)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
nbconvert = pytest.importorskip("nbconvert")


def test_exported_html_carries_the_png(tmp_path: Path) -> None:
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()  # the bundle must exist
    code = (
        "import numpy as np\n"
        "from medai_lab.widgets import view\n"
        "arr = np.full((40, 30, 20), -800, np.int16); arr[5:15, 10:20, 5:15] = 200\n"
        "labels = (arr > 0).astype(np.uint8)\n"
        "view(arr, labels=labels, spacing=(1.0, 1.0, 2.0), label_names={1: 'liver'})"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    # As JupyterLab saves by default: outputs, no widget state (with a saved state nbconvert
    # shows the live widget through its HTML manager instead).
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    (output,) = nb.cells[0].outputs
    assert "application/vnd.jupyter.widget-view+json" in output["data"]
    png = base64.b64decode(output["data"]["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert "data:image/png;base64," + output["data"]["image/png"][:100] in html

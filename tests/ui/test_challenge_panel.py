"""The Hackathon panel in a real JupyterLab + Chromium, outside a hub.

The panel opens from the command palette's command and the file browser's context menu, sends
the path through the server extension, and shows the server's one-line answers: that this
server is not under a hub (with the way to submit instead), or that a path is refused. The
whole flow under a hub is tested in tests/hub/test_challenge_service.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LabServer, guarded_page

LABEXT = Path(__file__).resolve().parents[2] / "medai_lab" / "labextension"
PANEL = "#medai-challenge"


@pytest.fixture
def page(browser: Any, lab: LabServer) -> Iterator[Any]:
    if not (LABEXT / "package.json").is_file():
        from testsupport import missing_component

        missing_component(f"the built labextension at {LABEXT} (npm run build in labext/)")
    lab.api("PUT", "/api/contents/preds", {"type": "directory"})
    context, pg = guarded_page(browser)
    try:
        pg.goto(f"{lab.url}/lab/workspaces/c{secrets.token_hex(4)}?token={lab.token}",
                wait_until="domcontentloaded")  # fmt: skip
        pg.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
        pg.evaluate("async () => { await window.jupyterapp.restored; }")
        yield pg
    finally:
        context.close()


def _message(page: Any) -> str:
    return str(page.locator(f"{PANEL} .medai-Challenge-message").inner_text())


def test_panel_says_why_it_cannot_submit_outside_a_hub(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('medai-lab:challenge')")
    page.wait_for_selector(f'{PANEL}[data-medai-challenge="error"]', timeout=30_000)
    assert "does not run under a JupyterHub" in _message(page)
    assert "medai-lab challenge submit DIR PATH" in _message(page)

    box = page.locator(f"{PANEL} input")
    for path, expected in (("../outside", "path refused"), ("preds", "JupyterHub")):
        box.fill(path)
        page.locator(f"{PANEL} button", has_text="Submit").click()
        page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent.includes(text) && "
            "!document.querySelector(sel + ' ~ div button.jp-mod-accept')?.disabled",
            arg=[f"{PANEL} .medai-Challenge-message", expected],
            timeout=30_000,
        )


def test_file_browser_menu_puts_the_path_in_the_panel(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: '/'})")
    page.locator(".jp-DirListing-item", has_text="preds").first.click(button="right")
    page.locator(".lm-Menu-item", has_text="Submit to the Hackathon").click()
    page.wait_for_selector(PANEL, timeout=30_000)
    assert page.locator(f"{PANEL} input").input_value() == "preds"

"""pytest-jupyter's in-process jupyter_server with the MedAI Lab extension enabled.

``jp_fetch`` sends the server's token; ``raw_fetch`` sends a hand-written URL (for traversal
attempts that must reach the server byte for byte) with or without it.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures and the async test hooks)

from medai_lab.server import stream

API = "medai-lab/api"


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"medai_lab.server": True}}}


@pytest.fixture(autouse=True)
def _fresh_scene_cache() -> None:
    stream.clear_cache()


@pytest.fixture
def raw_fetch(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str]
) -> Callable[..., Awaitable[Any]]:
    """``raw_fetch("volume?path=..%2f..", token=True, method="GET", body=None)``: no re-encoding,
    never raises on HTTP errors (the response's ``code`` says what happened)."""

    def fetch(tail: str, token: bool = True, method: str = "GET", body: str | None = None) -> Any:
        headers = dict(jp_auth_header) if token else {}
        return http_server_client.fetch(
            f"{jp_base_url}{API}/{tail}", method=method, body=body, headers=headers,
            raise_error=False, request_timeout=60,
        )  # fmt: skip

    return fetch


@pytest.fixture(scope="session")
def ct_source() -> Path:
    """The real JPEG 2000 CT series in the shared data (never copied into the repository)."""
    from testsupport import SHARED_DATA, missing_component

    folder = SHARED_DATA / "ct_series_basel" / "dicom"
    if not folder.is_dir():
        missing_component(f"the shared CT series at {folder}")
    return folder


@pytest.fixture
def ct_in_root(jp_root_dir: Path, ct_source: Path) -> Path:
    """A plain copy (symlinks dereferenced) of the CT series in the server root: ``ct/``."""
    target = jp_root_dir / "ct"
    shutil.copytree(ct_source, target, symlinks=False)
    return target

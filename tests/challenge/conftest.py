"""Shared fixtures: small phantom phases, challenge folders, submission packages, leftovers check.

Phantoms use the smoke-preset grid (48x48x32 at 3x3x5 mm), so a case takes milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from challenge_helpers import sandbox_processes, spec_dict

from medai_lab.datasets import write_phantom_dataset

SMOKE_SHAPE = (48, 48, 32)
SMOKE_SPACING = (3.0, 3.0, 5.0)


@pytest.fixture(scope="session")
def phases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MSD folders: ``validation`` (2 cases) and ``test`` (3 hidden cases, other seeds)."""
    root = tmp_path_factory.mktemp("challenge-data")
    out = {}
    for name, cases, seed in (("validation", 2, 0), ("test", 3, 100)):
        out[name] = write_phantom_dataset(
            root / name, "liver", cases, seed=seed, shape=SMOKE_SHAPE, spacing=SMOKE_SPACING,
            progress=False,
        )  # fmt: skip
    return out


@pytest.fixture
def make_challenge(tmp_path: Path, phases: dict[str, Path]) -> Callable[..., Any]:
    """``make_challenge(**limits)``: a fresh challenge folder in tmp_path."""
    from medai_lab.challenge import Challenge

    def make(name: str = "hack", **limits: Any) -> Challenge:
        return Challenge.create(tmp_path / name, spec_dict(phases, **limits))

    return make


@pytest.fixture(scope="session", autouse=True)
def _sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Sandbox working folders of this session under its own temp folder (private, 0700)."""
    folder = tmp_path_factory.mktemp("sandbox")
    before = os.environ.get("MEDAI_SANDBOX_DIR")
    os.environ["MEDAI_SANDBOX_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("MEDAI_SANDBOX_DIR", None)
    else:
        os.environ["MEDAI_SANDBOX_DIR"] = before


@pytest.fixture(autouse=True)
def _nothing_left_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    assert sandbox_processes(base) == [], "sandbox processes left running"
    sandboxes = base / "sandbox0"
    assert not sandboxes.exists() or not any(sandboxes.iterdir()), "working folders left"

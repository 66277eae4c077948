"""Tiny phantom datasets shared by the task tests (smoke-preset grid: 48x48x32 at 3x3x5 mm)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from medai_lab.datasets import write_phantom_dataset

SMOKE_SHAPE = (48, 48, 32)
SMOKE_SPACING = (3.0, 3.0, 5.0)


@pytest.fixture(scope="session")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], Path]:
    """``phantoms(task, cases)``: an MSD-layout phantom folder, written once per session."""
    made: dict[tuple[str, int], Path] = {}

    def make(task: str, cases: int = 2) -> Path:
        if (task, cases) not in made:
            out = tmp_path_factory.mktemp(f"{task}{cases}") / "msd"
            made[task, cases] = write_phantom_dataset(
                out, task, cases, shape=SMOKE_SHAPE, spacing=SMOKE_SPACING, progress=False
            )
        return made[task, cases]

    return make

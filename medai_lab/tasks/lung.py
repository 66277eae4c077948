"""Lung template: lungs and lung nodules on CT (MSD Task06_Lung; real MSD marks only tumours).

Defaults live in ``configs/task/lung.yaml`` (labels, intensity, spacing, patch); presets and
overrides work as for every task. Run ``python -m medai_lab.tasks.lung --preset smoke``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

TASK = "lung"


def train(
    preset: str = "cpu",
    data: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    **kwargs: Any,
) -> Any:
    """Train the lung model; see :func:`medai_lab.tasks.runner.train` for the other arguments."""
    from medai_lab.tasks.runner import train as run

    return run(TASK, preset, data, overrides, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``[--preset P] [--data DIR] [--out DIR] [--resume] [overrides]`` for the lung task."""
    from medai_lab.tasks.runner import main as run_main

    return run_main(argv, task=TASK)


if __name__ == "__main__":
    raise SystemExit(main())

"""``medai-lab demo``: the main job end to end on embedded defaults, headless.

1. Data: phantom study -> DICOM series -> de-identification (PS3.15 headers and burned-in text)
   -> discovery -> volume -> NIfTI, each step checked against the phantom's own array (and
   dcm2niix when installed).
2. Models: by default ONE template trained briefly, with as many epochs as fit a 3-minute demo
   at the speed measured on this machine; ``full=True`` trains lung, liver and heart at the
   ``cpu`` preset (Dice >= 0.9 checked) and says up front how long that takes here. Each run is
   tracked in MLflow (experiment ``medai-lab-demo``), exported to TorchScript, its validation
   images predicted from the export and scored; a summary table, an HTML report and the command
   plus link that open the MLflow UI on the runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from medai_lab.demo.models import DICE_TARGET, EXPERIMENT

__all__ = ["DICE_TARGET", "EXPERIMENT", "QUICK_MINUTES", "run_demo"]

QUICK_MINUTES = 3.0


def run_demo(
    out: Path,
    *,
    task: str = "liver",
    seed: int = 0,
    train_tasks: Sequence[str] | None = None,
    preset: str = "cpu",
    progress: bool = True,
    quick_minutes: float | None = None,
) -> int:
    """Run the demo into ``out``; returns 0 when every check passed.

    Parameters
    ----------
    task, seed
        The phantom of the data part.
    train_tasks
        Templates to train (may be empty: the data part alone, seconds); default every task
        of :mod:`medai_lab.catalogue`.
    preset
        Training preset. With ``cpu`` and no ``quick_minutes``, Dice >= 0.9 is checked (the
        preset is built for it); other presets only report their numbers.
    progress
        Lightning's progress bars (otherwise one line every 20 s with the time left).
    quick_minutes
        Make the whole demo fit this many minutes: the templates train at the ``cpu`` preset
        on fewer phantoms for the epochs that fit, at the speed measured here.
    """
    from medai_lab.demo.data import data_part
    from medai_lab.demo.models import model_part
    from medai_lab.demo.steps import Steps

    if train_tasks is None:
        from medai_lab import catalogue

        train_tasks = catalogue.names()
    start = time.perf_counter()
    steps = Steps(3 + 3 * len(train_tasks) + (1 if train_tasks else 0), start)
    warm = threading.Thread(target=_import_training, daemon=True, name="demo-imports")
    # Started only after the de-identification's worker processes exist no more: forking
    # while another thread holds an import lock can hang the child.
    code, phantom_s = data_part(
        Path(out), task, seed, steps, after_deid=warm.start if train_tasks else None
    )
    if not train_tasks:
        return code
    warm.join()
    deadline = start + 60 * quick_minutes if quick_minutes else None
    return (
        model_part(
            Path(out),
            tuple(train_tasks),
            preset,
            steps,
            quick_deadline=deadline,
            phantom_s=phantom_s,
            progress=progress,
        )
        or code
    )


def _import_training() -> None:
    """Import the training stack (torch, Lightning, MONAI: tens of seconds on a busy 2-core
    machine) while the data part finishes; errors surface later, where they are used."""
    try:
        import medai_lab.tasks.module
        import medai_lab.tasks.suite  # noqa: F401
    except Exception:
        pass

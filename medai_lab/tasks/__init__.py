"""Training templates: one shared segmentation core (config, data, module, runner) for every
task of the catalogue (:mod:`medai_lab.catalogue`: lung, liver, heart, and YAML-only tasks).

Importing this package loads only the config composer (pyyaml); ``train``, ``TrainResult``,
``SegmentationModule`` and ``overlay_figure`` import torch / MONAI / Lightning on first use.

>>> from medai_lab.tasks import compose, train
>>> cfg = compose("lung", "smoke", ["trainer.max_epochs=1"])
>>> result = train("lung", preset="smoke")          # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from medai_lab.tasks.config import (
    GROUPS,
    PRESETS,
    ConfigError,
    compose,
    flatten,
    options,
    parse_overrides,
)

_LAZY = {
    "train": "medai_lab.tasks.runner",
    "dataset": "medai_lab.tasks.runner",
    "main": "medai_lab.tasks.command",
    "TrainResult": "medai_lab.tasks.runner",
    "TrainingError": "medai_lab.tasks.runner",
    "runtime_trainer": "medai_lab.tasks.runner",
    "SegmentationModule": "medai_lab.tasks.module",
    "overlay_figure": "medai_lab.tasks.overlay",
}

__all__ = [
    "GROUPS",
    "PRESETS",
    "ConfigError",
    "compose",
    "flatten",
    "options",
    "parse_overrides",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""What :func:`medai_lab.tasks.runner.train` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.tasks.schema import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

    from medai_lab.tasks.module import SegmentationModule

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What a training run produced.

    ``metrics`` holds ``dice_mean`` and ``dice/<label>``, ``hd95/<label>``, ``nsd/<label>`` of the
    final evaluation (best checkpoint unless ``trainer.final_eval: last``), plus ``epoch`` (the
    epoch those weights come from) and ``best_score``.
    """

    config: TrainConfig
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics: dict[str, float]
    case_metrics: pd.DataFrame  # one row per (case, label)
    module: SegmentationModule  # holds the evaluated weights
    data_dir: Path | None = None
    run_dir: Path | None = None
    seconds: float = 0.0
    train_cases: list[str] = field(default_factory=list)
    val_cases: list[str] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)  # format -> exported model file
    mlflow_run_id: str | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """The older dict form (``train_cases``, ``val_cases``, ``exports``, ``mlflow_run_id``)."""
        out: dict[str, Any] = {
            "train_cases": self.train_cases,
            "val_cases": self.val_cases,
            "exports": self.exports,
        }
        if self.mlflow_run_id is not None:
            out["mlflow_run_id"] = self.mlflow_run_id
        return out

"""Train, export, predict and evaluate one task end to end (what ``medai-lab demo`` runs).

The independent evaluation predicts the validation images from the *exported* TorchScript file
on their own grids and scores them with :func:`medai_lab.evaluation.evaluate_dirs`, so a model
that trains well but exports or inverts badly shows up in the numbers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TaskOutcome", "train_and_evaluate"]


@dataclass
class TaskOutcome:
    """One task's training and independent evaluation."""

    task: str
    labels: dict[int, str]
    train_metrics: dict[str, float]
    eval_table: Any  # pandas.DataFrame from evaluate_dirs
    eval_csv: Path
    model: Path
    run_id: str | None
    seconds: float
    overlays: dict[str, Path] = field(default_factory=dict)

    def dice(self) -> dict[str, float]:
        """Mean Dice per label name over the evaluated cases, plus ``mean`` over cases."""
        df = self.eval_table
        out = {
            name: float(df[df["label_name"] == name]["dice"].mean())
            for name in self.labels.values()
        }
        out["mean"] = float(df.groupby("case")["dice"].mean().mean())
        return out


def train_and_evaluate(
    task: str,
    out: Path,
    preset: str = "cpu",
    overrides: tuple[str, ...] = (),
    track: bool | str = True,
    progress: bool = True,
) -> TaskOutcome:
    """Train ``task`` on phantoms under ``out/runs``, then predict and score its validation set."""
    from medai_lab.evaluation import evaluate_dirs
    from medai_lab.inference import Predictor, predict_folder
    from medai_lab.tasks.overlay import overlay_figure
    from medai_lab.tasks.runner import train

    result = train(
        task,
        preset,
        None,
        overrides,
        out_dir=out / "runs",
        progress=progress,
        track=track,
        export=("torchscript",),
    )
    model = result.exports["torchscript"]
    work = out / "evaluation" / task
    images, truth, preds = work / "images", work / "truth", work / "predictions"
    for folder in (images, truth, preds):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    data_dir = result.data_dir or out
    for case in result.val_cases:
        name = f"{case}.nii.gz"
        (images / name).symlink_to((data_dir / "imagesTr" / name).resolve())
        (truth / name).symlink_to((data_dir / "labelsTr" / name).resolve())
    report = predict_folder(Predictor.load(model), images, preds, progress=progress)
    if report.failed:
        raise RuntimeError(report.describe())
    labels = dict(result.module.labels)
    table = evaluate_dirs(
        preds,
        truth,
        labels,
        out_csv=work / "per_case.csv",
        nsd_tolerance=result.config.eval.nsd_tolerance,
        progress=False,
    )
    overlays = {}
    for key, example in result.module.val_examples.items():
        fig = overlay_figure(example, title=f"{task} {key}: {example['case']}")
        overlays[key] = work / f"overlay_{key}.png"
        fig.savefig(overlays[key], dpi=80, bbox_inches="tight")
    return TaskOutcome(
        task=task,
        labels=labels,
        train_metrics=result.metrics,
        eval_table=table,
        eval_csv=work / "per_case.csv",
        model=Path(model),
        run_id=result.mlflow_run_id,
        seconds=result.seconds,
        overlays=overlays,
    )

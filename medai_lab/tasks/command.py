"""``medai-lab train TASK ...``: argument parsing and the result summary a user reads."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from medai_lab import catalogue
from medai_lab.errors import MedaiError
from medai_lab.tasks.config import PRESETS

if TYPE_CHECKING:
    from medai_lab.tasks.result import TrainResult

EXPORT_CHOICES = ("torchscript", "onnx")


def build_parser(task: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"medai-lab train{' ' + task if task else ''}",
        description=(
            "Train a segmentation model, evaluate it per case, track it in MLflow and export it. "
            "Further key=value or --key value arguments override the config "
            "(e.g. --trainer.max_epochs 5 model=segresnet)."
        ),
    )
    if task is None:
        parser.add_argument("task", choices=catalogue.names())
    parser.add_argument("--preset", default="cpu", help=f"{' | '.join(PRESETS)} (default cpu)")
    parser.add_argument("--data", help="MSD folder, imagesTr/labelsTr folder or CSV manifest")
    parser.add_argument("--out", default="runs", help="run folder root (default ./runs)")
    parser.add_argument("--resume", action="store_true", help="continue from last.ckpt")
    parser.add_argument("--download", action="store_true", help="fetch the MSD task (network)")
    parser.add_argument("--experiment", help="MLflow experiment (default medai-lab-<task>)")
    parser.add_argument("--tracking-uri", help="MLflow store (default $MLFLOW_TRACKING_URI, local)")
    parser.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    parser.add_argument(
        "--export",
        action="append",
        choices=EXPORT_CHOICES,
        help="export format, repeatable (default torchscript)",
    )
    parser.add_argument("--no-export", action="store_true", help="do not export the model")
    parser.add_argument("--register", metavar="NAME", help="register the model in MLflow")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None, task: str | None = None) -> int:
    """Run ``medai-lab train``; returns the exit status (2 with one error line on bad input)."""
    from medai_lab.tasks.runner import train

    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = build_parser(task).parse_known_args(argv)
    overrides = [*rest, *(["data.download=true"] if args.download else [])]
    exports = () if args.no_export else tuple(args.export or ("torchscript",))
    try:
        result = train(
            task or args.task,
            args.preset,
            args.data,
            overrides,
            out_dir=args.out,
            resume=args.resume,
            progress=not args.no_progress,
            track=False if args.no_track else (args.experiment or True),
            tracking_uri=args.tracking_uri,
            export=exports,
            register=args.register,
            command_line=["medai-lab", "train", *([task] if task else []), *argv],
        )
    except MedaiError as exc:
        print(f"medai-lab: error: {exc}", file=sys.stderr)
        return 2
    print(format_result(result))
    return 0


def format_result(result: TrainResult) -> str:
    """One line per label, then checkpoint, exports and the MLflow run."""
    m, labels = result.metrics, result.module.labels
    lines = [
        f"{result.config.task.name}: mean Dice {m.get('dice_mean', float('nan')):.3f}"
        f" ({result.seconds:.0f} s)"
    ]
    for name in labels.values():
        lines.append(
            f"  {name:<12} Dice {m[f'dice/{name}']:.3f}  HD95 {m[f'hd95/{name}']:.1f} mm  "
            f"NSD {m[f'nsd/{name}']:.3f}"
        )
    lines.append(f"  best checkpoint: {result.best_checkpoint}")
    for fmt, path in result.exports.items():
        lines.append(f"  {fmt}: {path}")
    if result.mlflow_run_id:
        lines.append(f"  MLflow run: {result.mlflow_run_id}")
    return "\n".join(lines)

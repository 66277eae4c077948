"""``medai-lab demo``: argument parsing only (the job itself is :mod:`medai_lab.demo`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medai_lab import catalogue


def _run(args: argparse.Namespace) -> int:
    from medai_lab.demo import QUICK_MINUTES, run_demo

    if args.no_train:
        tasks: tuple[str, ...] = ()
    elif args.train:
        tasks = tuple(args.train)
    else:
        tasks = catalogue.names() if args.full else (args.task,)
    # Brief training unless --full or an explicit preset asks for the preset as it is.
    quick = not args.full and args.preset is None
    progress = sys.stdout.isatty() and not args.quiet
    return run_demo(
        Path(args.out),
        task=args.task,
        seed=args.seed,
        train_tasks=tasks,
        preset=args.preset or "cpu",
        progress=progress,
        quick_minutes=(args.minutes or QUICK_MINUTES) if quick else None,
    )


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the main parser's subparsers."""
    tasks = catalogue.names()
    p = sub.add_parser(
        "demo",
        help="the main job, headless, on embedded defaults (about 3 minutes; --full: all tasks)",
        description="DICOM -> de-identified -> volume -> one template trained briefly -> "
        "evaluated -> exported -> report and MLflow run, in about 3 minutes. --full trains "
        "every catalogue task at the cpu preset and says first how long that takes here.",
    )
    p.add_argument("--out", default="medai-demo", help="working folder (default: ./medai-demo)")
    p.add_argument(
        "--task", choices=tasks, default="liver", help="phantom and template (default: liver)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--full",
        action="store_true",
        help="train every catalogue task at the cpu preset (Dice >= 0.9 checked; the time it "
        "takes on this machine is printed first)",
    )
    p.add_argument("--train", action="append", choices=tasks, help="template to train, repeatable")
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="time budget of the brief demo (default 3); training gets what is left",
    )
    p.add_argument("--preset", default=None, help="train at this preset as it is (no budget)")
    p.add_argument("--no-train", action="store_true", help="only the data part (seconds)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)

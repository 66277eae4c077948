"""``medai-lab demo``: argument parsing only (the job itself is :mod:`medai_lab.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from medai_lab.demo import run_demo

    tasks = () if args.no_train else tuple(args.train or ("lung", "liver", "heart"))
    return run_demo(
        Path(args.out),
        task=args.task,
        seed=args.seed,
        train_tasks=tasks,
        preset=args.preset,
        progress=not args.quiet,
    )


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the main parser's subparsers."""
    p = sub.add_parser("demo", help="the main job, headless, on embedded defaults")
    p.add_argument("--out", default="medai-demo", help="working folder (default: ./medai-demo)")
    p.add_argument(
        "--task",
        choices=["lung", "liver", "heart"],
        default="liver",
        help="phantom of the data part",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--train",
        action="append",
        choices=["lung", "liver", "heart"],
        help="task to train, repeatable (default: all three)",
    )
    p.add_argument("--preset", default="cpu", help="training preset (default cpu: minutes/task)")
    p.add_argument("--no-train", action="store_true", help="only the data part (seconds)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)

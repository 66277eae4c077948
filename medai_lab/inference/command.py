"""``medai-lab predict``: argument parsing and output only."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from medai_lab.inference import Predictor, predict_folder

    predictor = Predictor.load(args.model, device=args.device)
    report = predict_folder(
        predictor, args.images, args.out, progress=not args.quiet, overwrite=args.overwrite
    )
    print(report.describe())
    return 1 if report.failed else 0


def add_parser(sub: Any) -> None:
    """Register ``predict`` on the main parser's subparsers."""
    p = sub.add_parser("predict", help="segment NIfTI images with a checkpoint or exported model")
    p.add_argument("model", help=".ckpt, or .ts/.onnx with its .json sidecar")
    p.add_argument("images", help="a .nii/.nii.gz image or a folder of them")
    p.add_argument("--out", required=True, help="folder for the label maps (same file names)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--overwrite", action="store_true", help="replace existing label maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

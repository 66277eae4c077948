"""``medai-lab predict``: argument parsing and output only.

Two forms: NIfTI images in, label maps out (``predict MODEL IMAGES --out DIR``); or the PACS
round trip (``predict MODEL --study UID --url ...|--host ... --out DIR [--store]``): pull the
study, segment it, write a DICOM SEG and (with ``--store``) send it back.
"""

from __future__ import annotations

import argparse
from typing import Any

from medai_lab.errors import MedaiError


def _run(args: argparse.Namespace) -> int:
    if args.study:
        return _round_trip(args)
    if not args.images:
        raise MedaiError("predict needs IMAGES (NIfTI file or folder) or --study UID with a PACS")
    from medai_lab.inference import Predictor, predict_folder

    predictor = Predictor.load(args.model, device=args.device)
    report = predict_folder(
        predictor, args.images, args.out, progress=not args.quiet, overwrite=args.overwrite
    )
    print(report.describe())
    return 1 if report.failed else 0


def _round_trip(args: argparse.Namespace) -> int:
    from medai_lab.inference.roundtrip import segment_study
    from medai_lab.pacs.cli import make_client

    if args.images:
        raise MedaiError("give IMAGES or --study, not both")
    deidentifier = None
    if args.deid:
        from medai_lab.deid import Deidentifier
        from medai_lab.deid.keys import load_or_create_key

        deidentifier = Deidentifier(load_or_create_key(args.key_file), (), pixels="redact")
    report = segment_study(
        make_client(args),
        args.study,
        args.model,
        args.out,
        series=args.series,
        store=args.store,
        deidentifier=deidentifier,
        device=args.device,
        progress=not args.quiet,
    )
    print(report.describe())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``predict`` on the main parser's subparsers."""
    from medai_lab.pacs.cli import add_connection_arguments

    p = sub.add_parser(
        "predict",
        help="segment NIfTI images, or a PACS study (result back as DICOM SEG)",
    )
    p.add_argument(
        "model", help="a run folder, MLflow run id, .ckpt, or .ts/.onnx with its sidecar"
    )
    p.add_argument("images", nargs="?", help="a .nii/.nii.gz image or a folder of them")
    p.add_argument("--out", required=True, help="folder for the label maps / the SEG and its work")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--overwrite", action="store_true", help="replace existing label maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("PACS round trip")
    g.add_argument("--study", metavar="UID", help="StudyInstanceUID to pull and segment")
    g.add_argument("--series", help="which series of the study (index or UID; default: largest)")
    g.add_argument("--store", action="store_true", help="send the SEG back (STOW-RS / C-STORE)")
    g.add_argument("--deid", action="store_true", help="pull de-identified (the SEG stays local)")
    g.add_argument("--key-file", help="de-identification project key (with --deid)")
    add_connection_arguments(p)
    p.set_defaults(func=_run)

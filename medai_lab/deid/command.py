"""``medai-lab deid``: argument parsing and output only."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from medai_lab.deid import deidentify_tree

    report = deidentify_tree(
        args.in_dir,
        args.out_dir,
        options=args.option or (),
        key_file=args.key_file,
        workers=args.workers,
        allow_burned_in=args.allow_burned_in,
        linkage_file=args.linkage,
        input_linkage=args.input_linkage,
        pixels=args.pixels,
        progress=not args.quiet,
    )
    print(report.describe())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``deid`` on the main parser's subparsers."""
    from medai_lab.deid.profile import option_names

    p = sub.add_parser("deid", help="de-identify a DICOM folder (PS3.15 Basic Profile + options)")
    p.add_argument("in_dir", help="input folder (never modified)")
    p.add_argument("out_dir", help="output folder: de-identified tree, quarantine/, deid_audit.csv")
    p.add_argument(
        "--option",
        action="append",
        choices=option_names(),
        metavar="NAME",
        help="a PS3.15 option, repeatable: " + ", ".join(option_names()),
    )
    p.add_argument(
        "--key-file", help="project key (created if absent; default ~/.config/medai-lab/deid.key)"
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument(
        "--pixels",
        choices=("redact", "quarantine", "off"),
        default="redact",
        help="text burned into pixels (OCR): redact it (default), quarantine files that "
        "have any, or off (headers only; likely burned-in files quarantined by rule)",
    )
    p.add_argument(
        "--allow-burned-in",
        action="store_true",
        help="with --pixels off: do not quarantine US/SC/OT and BurnedInAnnotation YES files",
    )
    p.add_argument(
        "--linkage",
        metavar="FILE",
        help="write original patient <-> pseudonym pairs here (mode 0600, outside OUT)",
    )
    p.add_argument(
        "--input-linkage",
        metavar="FILE",
        help="write input pseudonym <-> input path pairs here (mode 0600, outside OUT)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

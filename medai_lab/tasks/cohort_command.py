"""``medai-lab cohort``: a training cohort for a task from DICOM images + RTSTRUCT/SEG labels.

Labels and modality come from :mod:`medai_lab.catalogue`; the work itself is
:func:`medai_lab.datasets.cohort.build_cohort`.
"""

from __future__ import annotations

import argparse
from typing import Any

from medai_lab.errors import MedaiError


def parse_synonyms(items: list[str] | None) -> dict[str, str]:
    """``["GTV_primary=tumour", ...]`` -> ``{"GTV_primary": "tumour"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise MedaiError(f"--synonym wants ROI_NAME=STRUCTURE, got {item!r}")
        out[name.strip()] = target.strip()
    return out


def _run(args: argparse.Namespace) -> int:
    from medai_lab import catalogue
    from medai_lab.datasets.cohort import build_cohort

    info = catalogue.get(args.task)
    report = build_cohort(
        args.dicom_dir,
        args.out,
        task=args.task,
        labels=info.label_map(),
        modality=None if args.any_modality else info.modality,
        synonyms=parse_synonyms(args.synonym),
        deid=args.deid,
        key_file=args.key_file,
        include_unlabelled=not args.labelled_only,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(report.describe())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cohort`` on the main parser's subparsers."""
    from medai_lab import catalogue

    p = sub.add_parser(
        "cohort", help="MSD-layout training cohort from DICOM images and their RTSTRUCT/SEG labels"
    )
    p.add_argument("dicom_dir", help="folder with image series and RTSTRUCT/SEG files (read only)")
    p.add_argument(
        "out", help="new folder: imagesTr/ labelsTr/ imagesTs/ dataset.json manifest.csv"
    )
    p.add_argument("--task", choices=catalogue.names(), required=True)
    p.add_argument(
        "--synonym",
        action="append",
        metavar="ROI=STRUCTURE",
        help="extra ROI name mapping, repeatable (GTV_1=tumour); a table: $MEDAI_STRUCTURES",
    )
    p.add_argument("--deid", action="store_true", help="de-identify first (into OUT/dicom/)")
    p.add_argument("--key-file", help="de-identification project key (with --deid)")
    p.add_argument("--any-modality", action="store_true", help="keep series of every modality")
    p.add_argument("--labelled-only", action="store_true", help="skip unlabelled series")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)

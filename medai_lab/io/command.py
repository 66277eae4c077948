"""``medai-lab convert`` and ``medai-lab info``: DICOM series to NIfTI, and what a folder holds.

Argument parsing and output only; the work is in :mod:`medai_lab.io`.
"""

from __future__ import annotations

import argparse
from typing import Any


def _cmd_convert(args: argparse.Namespace) -> int:
    from medai_lab.io import convert_dicom_to_nifti

    vol = convert_dicom_to_nifti(
        args.dicom_dir,
        args.out,
        series=args.series,
        allow_gaps=args.allow_gaps,
        allow_single_slice=args.allow_single_slice,
        overwrite=args.overwrite,
        workers=args.workers,
        labels=not args.no_labels,
        split=args.split,
        sidecar=not args.no_sidecar,
        philips_scaling=args.philips_scaling,
        suv=args.suv,
    )
    for path in vol.meta.get("written", []):
        if path.endswith((".nii", ".nii.gz")):
            print(f"wrote {path}")
    print(f"image: {vol}")
    if vol.axis4:
        axis = vol.axis4
        print(f"4th axis: {axis['name']} x {axis['size']} ({axis['attribute']} {axis['unit']})")
    if vol.meta.get("labels_written"):
        print(f"wrote {vol.meta['labels_written']}: {vol.meta['label_summary']}")
    for warning in vol.meta.get("warnings", []):
        print(f"note: {warning}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from medai_lab.io import discover_series

    report = discover_series(args.path, workers=args.workers)
    print(report.describe())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``convert`` and ``info`` on the ``medai-lab`` subcommand parser."""
    p = sub.add_parser("convert", help="convert a DICOM series to NIfTI")
    p.add_argument("dicom_dir", help="folder (searched recursively) or file")
    p.add_argument("out", help="output .nii or .nii.gz")
    p.add_argument("--series", help="series index or SeriesInstanceUID when there are several")
    p.add_argument("--allow-gaps", action="store_true", help="fill missing slices with blanks")
    p.add_argument("--allow-single-slice", action="store_true", help="write a one-slice NIfTI")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--workers", type=int, default=None, help="reader threads")
    p.add_argument(
        "--no-labels",
        action="store_true",
        help="do not write the RTSTRUCT/SEG label map of the series (default: OUT_labels.nii.gz)",
    )
    p.add_argument(
        "--split",
        choices=["echo", "phase", "time", "diffusion", "component"],
        help="write one 3-D NIfTI per volume of a 4-D series (OUT_<split>-<n>.nii.gz)",
    )
    p.add_argument(
        "--philips-scaling",
        choices=["float", "display"],
        default="float",
        help="Philips MR: 'float' (default, as dcm2niix) divides by the private scale slope; "
        "'display' keeps the standard rescale (what viewers show)",
    )
    p.add_argument(
        "--suv",
        choices=["bw", "lbm", "bsa"],
        help="PET: write SUV (body weight, lean body mass or body surface area), decay corrected",
    )
    p.add_argument("--no-sidecar", action="store_true", help="do not write the JSON sidecar")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("info", help="list the DICOM series in a folder (headers only)")
    p.add_argument("path")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_cmd_info)

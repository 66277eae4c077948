"""``medai-lab seg``: a label map to a DICOM SEG, or (``--read``) a SEG to a label map.

Argument parsing and output only; the work is in :mod:`medai_lab.io.seg`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError


def parse_labels(items: list[str] | None) -> dict[int, str] | None:
    """``["1=liver", "2=tumour"]`` -> ``{1: "liver", 2: "tumour"}``."""
    if not items:
        return None
    out: dict[int, str] = {}
    for item in items:
        value, sep, name = item.partition("=")
        if not sep or not value.strip().isdigit() or not name.strip():
            raise MedaiError(f"--labels takes VALUE=NAME pairs such as 1=liver, not {item!r}")
        if int(value) < 1:
            raise MedaiError("label values must be 1 or more (0 is background)")
        out[int(value)] = name.strip()
    return out


def dataset_labels(nifti: Path) -> dict[int, str] | None:
    """Label names from a ``dataset.json`` beside the NIfTI or one folder up (MSD layout).

    Both MSD (``{"1": "liver"}``) and nnU-Net v2 (``{"liver": 1}``) label tables are read;
    background (0) and region lists are left out.
    """
    for folder in (nifti.parent, nifti.parent.parent):
        path = folder / "dataset.json"
        if not path.is_file():
            continue
        try:
            table = json.loads(path.read_text(encoding="utf-8")).get("labels") or {}
        except (OSError, ValueError, AttributeError) as err:
            raise MedaiError(f"cannot read label names from {path}: {err}") from err
        out: dict[int, str] = {}
        for key, val in table.items():
            if str(key).strip().isdigit():
                out[int(key)] = str(val)
            elif isinstance(val, int) and not isinstance(val, bool):
                out[val] = str(key)
        return {v: n for v, n in out.items() if v > 0} or None
    return None


def _write(args: argparse.Namespace) -> int:
    from medai_lab import __version__
    from medai_lab.io import load_nifti
    from medai_lab.io.seg import Algorithm, write_seg
    from medai_lab.io.structures import match_structure

    src = Path(args.labels_file)
    labels = parse_labels(args.labels) or dataset_labels(src)
    volume = load_nifti(src)  # labels None: write_seg names each value present label_N
    algorithm = Algorithm(
        args.algorithm_name or "MedAI Lab",
        args.algorithm_version or ("unknown" if args.algorithm_name else __version__),
        args.run_id,
    )
    out = write_seg(
        volume,
        args.reference,
        args.out,
        labels=labels,
        algorithm=algorithm,
        series_description=args.series_description,
        fractional=args.fractional,
    )
    from medai_lab.io.seg import seg_references

    written = seg_references(out)["segment_labels"]
    print(f"wrote {out}: {len(written)} segment(s): {', '.join(written)}")
    unknown = [n for n in written if match_structure(n) is None]
    if unknown:
        print(
            f"note: coded as generic tissue (not in the structure vocabulary): {', '.join(unknown)}"
        )
    return 0


def _write_rtstruct(args: argparse.Namespace) -> int:
    from medai_lab.io import load_nifti
    from medai_lab.io.rtstruct import rtstruct_references
    from medai_lab.io.rtstruct_write import write_rtstruct

    src = Path(args.labels_file)
    names = parse_labels(args.labels) or dataset_labels(src)
    out = write_rtstruct(
        load_nifti(src), args.reference, args.out, names=names,
        series_description=args.series_description,
    )  # fmt: skip
    rois = rtstruct_references(out)["roi_names"]
    print(f"wrote {out}: RTSTRUCT with {len(rois)} ROI(s): {', '.join(rois)}")
    return 0


def _read(args: argparse.Namespace) -> int:
    from medai_lab.io import load_series, save_nifti
    from medai_lab.io.seg import read_seg

    out = Path(args.out)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise MedaiError("--read writes a NIfTI label map: --out must end with .nii or .nii.gz")
    reference = load_series(args.reference)
    result = read_seg(
        args.read,
        reference,
        labels=parse_labels(args.labels),
        overlap=args.overlap,
        threshold=args.threshold,
    )
    save_nifti(result.volume, out)
    print(f"wrote {out}: {result.describe()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if bool(args.read) == bool(args.labels_file):
        raise MedaiError("give LABELS.nii.gz to write a SEG, or --read SEG.dcm to read one")
    if Path(args.out).exists() and not args.overwrite:
        raise MedaiError(f"{args.out} exists (use --overwrite to replace it)")
    if args.read:
        return _read(args)
    return _write_rtstruct(args) if args.rtstruct else _write(args)


def add_parser(sub: Any) -> None:
    """Register ``seg`` on the main parser's subparsers."""
    p = sub.add_parser(
        "seg",
        help="label map (NIfTI) -> DICOM SEG on a series, or --read a SEG -> NIfTI",
        description="Write a NIfTI label map on a DICOM series' grid as a DICOM SEG, or read a "
        "DICOM SEG onto the series' grid as a NIfTI label map (--read).",
    )
    p.add_argument("labels_file", nargs="?", metavar="LABELS.nii.gz", help="label map to write")
    p.add_argument("--read", metavar="SEG.dcm", help="read this SEG instead of writing one")
    p.add_argument(
        "--reference",
        required=True,
        metavar="SERIES_DIR",
        help="the source image series (folder or file list's folder)",
    )
    p.add_argument("--out", required=True, help="SEG.dcm to write, or LABELS.nii.gz with --read")
    p.add_argument(
        "--labels",
        nargs="+",
        metavar="N=NAME",
        help="label names, e.g. 1=liver 2=tumour (default: dataset.json beside the "
        "NIfTI, else label_N; with --read: map segments onto these labels)",
    )
    p.add_argument("--algorithm-name", help="model name for the SEG's algorithm identification")
    p.add_argument("--algorithm-version", help="model version")
    p.add_argument("--run-id", help="MLflow run id of the model")
    p.add_argument("--series-description", default="MedAI Lab segmentation")
    p.add_argument("--fractional", action="store_true", help="write a FRACTIONAL SEG")
    p.add_argument(
        "--rtstruct",
        action="store_true",
        help="write an RTSTRUCT (contours, for radiotherapy systems) instead of a SEG",
    )
    p.add_argument(
        "--overlap",
        choices=["later", "smaller", "error"],
        default="later",
        help="--read: a voxel in two segments gets the later/smaller label or fails",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="--read: fractional SEG probability counted as inside (default 0.5)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_run)

"""The ``medai-lab`` command: parses arguments, calls the subpackages, prints one-line errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from medai_lab import __version__
from medai_lab.errors import MedaiError


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
    )
    print(f"wrote {args.out}: {vol}")
    for warning in vol.meta.get("warnings", []):
        print(f"note: {warning}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from medai_lab.io import discover_series

    report = discover_series(args.path, workers=args.workers)
    print(report.describe())
    return 0


def _cmd_phantom(args: argparse.Namespace) -> int:
    from medai_lab.datasets.phantom import write_phantom_dataset

    out = write_phantom_dataset(
        args.out_dir, args.task, args.cases, fmt=args.format, seed=args.seed, progress=True
    )
    print(f"wrote {args.cases} {args.task} phantom case(s) ({args.format}) to {out}")
    return 0


def _cmd_deid(args: argparse.Namespace) -> int:
    from medai_lab.deid import deidentify_tree

    report = deidentify_tree(
        args.in_dir,
        args.out_dir,
        options=args.option or (),
        key_file=args.key_file,
        workers=args.workers,
        allow_burned_in=args.allow_burned_in,
        linkage_file=args.linkage,
        progress=not args.quiet,
    )
    print(report.describe())
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from medai_lab.evaluation import run_evaluate_cli

    return run_evaluate_cli(
        args.pred_dir,
        args.truth_dir,
        args.out,
        args.nsd_tolerance,
        labels=args.labels,
        workers=args.workers,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from medai_lab.hub.memory import install as cap_gpu_memory
    from medai_lab.tasks.command import main as train_main

    cap_gpu_memory()  # a time-sliced GPU share on the hub: MEDAI_GPU_MEMORY_FRACTION
    return train_main(args.rest)


def _cmd_export(args: argparse.Namespace) -> int:
    from medai_lab.export import export_checkpoint

    result = export_checkpoint(args.source, args.format, args.out, args.tracking_uri)
    what = "bundle" if args.format == "bundle" else args.format
    print(f"wrote {what} {result.path if hasattr(result, 'path') else result.model}")
    print(f"verified against the network: max |diff| {result.max_abs_diff:.2e}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from medai_lab.inference import Predictor, predict_folder

    predictor = Predictor.load(args.model, device=args.device)
    report = predict_folder(
        predictor, args.images, args.out, progress=not args.quiet, overwrite=args.overwrite
    )
    print(report.describe())
    return 1 if report.failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medai-lab",
        description="MedAI Lab: DICOM to volumes, phantoms, training and more for medical imaging.",
    )
    parser.add_argument("--version", action="version", version=f"medai-lab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("convert", help="convert a DICOM series to NIfTI")
    p.add_argument("dicom_dir", help="folder (searched recursively) or file")
    p.add_argument("out", help="output .nii or .nii.gz")
    p.add_argument("--series", help="series index or SeriesInstanceUID when there are several")
    p.add_argument("--allow-gaps", action="store_true", help="fill missing slices with blanks")
    p.add_argument("--allow-single-slice", action="store_true", help="write a one-slice NIfTI")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--workers", type=int, default=None, help="reader threads")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("info", help="list the DICOM series in a folder (headers only)")
    p.add_argument("path")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("phantom", help="write seeded CT-like phantoms in MSD layout")
    p.add_argument("out_dir")
    p.add_argument("--task", choices=["lung", "liver", "heart"], required=True)
    p.add_argument("--cases", type=int, default=4)
    p.add_argument("--format", choices=["nifti", "dicom"], default="nifti")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_phantom)

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
    p.add_argument("--allow-burned-in", action="store_true", help="do not quarantine US/SC/OT etc.")
    p.add_argument(
        "--linkage", metavar="FILE", help="write original <-> pseudonym pairs here (outside OUT)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_deid)

    p = sub.add_parser("evaluate", help="per-case Dice, HD95 and NSD of predictions vs truth")
    p.add_argument("pred_dir", help="folder of predicted label maps (.nii/.nii.gz)")
    p.add_argument("truth_dir", help="folder of reference label maps with the same file names")
    p.add_argument("--out", default="report.csv", help="per-case CSV (default: report.csv)")
    p.add_argument("--nsd-tolerance", type=float, default=1.0, help="NSD tolerance in mm")
    p.add_argument("--labels", nargs="+", help="labels to score, as N or N=name (default: all)")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "train",
        help="train lung | liver | heart (see medai-lab train --help)",
        add_help=False,
        prefix_chars="\0",  # every argument goes to the training command's own parser
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_train)

    from medai_lab.export.source import ALL_FORMATS

    p = sub.add_parser("export", help="export a trained model (TorchScript, ONNX, MONAI bundle)")
    p.add_argument("source", metavar="RUN_OR_CKPT", help="run folder, .ckpt file or MLflow run id")
    p.add_argument("--format", choices=ALL_FORMATS, default="torchscript")
    p.add_argument("--out", required=True, help="model file, or folder for a bundle")
    p.add_argument("--tracking-uri", help="MLflow store to look a run id up in")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("predict", help="segment NIfTI images with a checkpoint or exported model")
    p.add_argument("model", help=".ckpt, or .ts/.onnx with its .json sidecar")
    p.add_argument("images", help="a .nii/.nii.gz image or a folder of them")
    p.add_argument("--out", required=True, help="folder for the label maps (same file names)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--overwrite", action="store_true", help="replace existing label maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_predict)

    from medai_lab.pacs.cli import add_parser as add_pacs

    add_pacs(sub)

    from medai_lab.challenge.command import add_parser as add_challenge

    add_challenge(sub)

    from medai_lab.server.launch import add_parser as add_lab

    add_lab(sub)

    from medai_lab.hub.command import add_parser as add_hub

    add_hub(sub)

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
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MedaiError as err:
        if args.debug:
            raise
        print(f"medai-lab: error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:
        if args.debug:
            raise
        print(f"medai-lab: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medai-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``medai-lab`` command: parses arguments, calls the subpackages, prints one-line errors."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from medai_lab import __version__, catalogue
from medai_lab.errors import MedaiError


def _cmd_phantom(args: argparse.Namespace) -> int:
    from medai_lab.datasets.phantom import write_phantom_dataset

    out = write_phantom_dataset(
        args.out_dir, args.task, args.cases, fmt=args.format, seed=args.seed, progress=True
    )
    print(f"wrote {args.cases} {args.task} phantom case(s) ({args.format}) to {out}")
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


_COMMAND_MODULES = (
    "medai_lab.io.command",
    "medai_lab.deid.command",
    "medai_lab.io.labels_command",
    "medai_lab.tasks.cohort_command",
    "medai_lab.inference.command",
    "medai_lab.doctor",
    "medai_lab.demo_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medai-lab",
        description="MedAI Lab: DICOM to volumes, phantoms, training and more for medical imaging.",
    )
    parser.add_argument("--version", action="version", version=f"medai-lab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("phantom", help="write seeded CT-like phantoms in MSD layout")
    p.add_argument("out_dir")
    p.add_argument("--task", choices=catalogue.names(), required=True)
    p.add_argument("--cases", type=int, default=4)
    p.add_argument("--format", choices=["nifti", "dicom"], default="nifti")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_phantom)

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

    from medai_lab.pacs.cli import add_parser as add_pacs

    add_pacs(sub)

    from medai_lab.challenge.command import add_parser as add_challenge

    add_challenge(sub)

    from medai_lab.server.launch import add_parser as add_lab

    add_lab(sub)

    from medai_lab.hub.command import add_parser as add_hub

    add_hub(sub)

    # Subcommands that live beside the code they drive: each module has add_parser(sub).
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)  # --help / --version print and exit here
        finally:
            sys.stdout.flush()  # a closed pipe shows up now, not at interpreter exit
        if argv is None:  # the command itself, not a caller in its own process (tests, notebooks)
            from medai_lab import cpushare

            cpushare.apply_thread_limits()  # thread pools sized to this process's CPU share
        try:
            return int(args.func(args) or 0)
        except BrokenPipeError:
            raise
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
        finally:
            sys.stdout.flush()
    except BrokenPipeError as err:
        import os
        import select

        try:  # POLLERR on our stdout: its reader (`| head`) has gone; else the pipe was another
            poll = select.poll()
            poll.register(sys.stdout.fileno(), select.POLLOUT)
            reader_gone = any(event & select.POLLERR for _, event in poll.poll(0))
        except (OSError, ValueError, AttributeError):
            reader_gone = False
        if not reader_gone:
            print(f"medai-lab: error: BrokenPipeError: {err}", file=sys.stderr)
            return 2
        # As the Python docs advise: stdout to /dev/null so the flush at exit cannot fail again,
        # and the exit status a shell gives a command stopped by SIGPIPE (128 + 13).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

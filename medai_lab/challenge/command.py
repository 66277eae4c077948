"""``medai-lab challenge create|submit|evaluate|dry-run|leaderboard|status|kube``: parsing and
output only."""

from __future__ import annotations

import argparse
import json
from typing import Any

from medai_lab import catalogue
from medai_lab.challenge.errors import ChallengeError


def add_parser(sub: Any) -> None:
    """Register ``challenge`` and its subcommands on the main parser's subparsers."""
    top = sub.add_parser("challenge", help="hackathon mode: hidden-data evaluation, leaderboard")
    cmds = top.add_subparsers(dest="challenge_command", required=True, metavar="ACTION")

    p = cmds.add_parser("create", help="make a challenge folder from a spec or data folders")
    p.add_argument("dir", help="new challenge folder (database, submissions, results)")
    p.add_argument("--spec", help="challenge YAML (see docs/challenge.md)")
    p.add_argument("--task", choices=catalogue.names(), help="without --spec")
    p.add_argument("--validation", help="without --spec: MSD folder of the visible phase")
    p.add_argument("--test", help="without --spec: MSD folder of the hidden phase")
    p.add_argument("--name", help="without --spec: challenge name")
    p.set_defaults(func=_create)

    p = cmds.add_parser("submit", help="check, store and queue a submission")
    p.add_argument("dir", help="challenge folder (with --hub: the submission)")
    p.add_argument(
        "path", nargs="?", help="model.ts/.onnx (with its .json), a package folder or predictions"
    )
    p.add_argument("--hub", metavar="URL", help="submit through the hub's challenge service")
    p.add_argument("--token", help="with --hub: a JupyterHub token ($JUPYTERHUB_API_TOKEN)")
    p.add_argument("--team", help="team name (default: $JUPYTERHUB_USER)")
    p.add_argument("--phase", help="phase name (default: the first phase)")
    p.add_argument("--format", choices=["torchscript", "onnx", "python", "predictions"])
    p.set_defaults(func=_submit)

    p = cmds.add_parser("evaluate", help="score queued submissions (instructor)")
    p.add_argument("dir", help="challenge folder")
    p.add_argument("--max", type=int, default=None, help="at most this many submissions")
    p.add_argument("--watch", type=float, default=0.0, metavar="S", help="poll the queue for S s")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.add_argument("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or local)")
    p.add_argument(
        "--requeue", action="store_true",
        help="also queue again what is running under another live evaluator (dead ones: always)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=1, metavar="N", help="sandboxes at once")
    p.add_argument(
        "--gpus", metavar="INVENTORY",
        help="GPU pool shared with the hub (e.g. 0,1 or 0:2 or auto); with limits.gpu",
    )  # fmt: skip
    p.add_argument("--gpu-state", metavar="FILE", help="the hub's GPU state file (with --gpus)")
    p.set_defaults(func=_evaluate)

    p = cmds.add_parser("dry-run", help="run a submission on visible cases; nothing is stored")
    p.add_argument("dir", help="challenge folder")
    p.add_argument("path", help="model.ts/.onnx (with its .json) or a package folder")
    p.add_argument("--team", help="team name (default: $JUPYTERHUB_USER)")
    p.add_argument("--phase", help="the phase it is meant for (default: the first phase)")
    p.add_argument("--format", choices=["torchscript", "onnx", "python"])
    p.add_argument("--max-cases", type=int, metavar="N", help="only the first N visible cases")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_dry_run)

    p = cmds.add_parser("leaderboard", help="the ranked table of a phase")
    p.add_argument("dir", help="challenge folder")
    p.add_argument("--phase", help="phase name (default: the first phase)")
    p.add_argument("--html", metavar="FILE", help="also write an HTML page")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--public", action="store_true", help="the teams' view of a hidden phase")
    p.set_defaults(func=_leaderboard)

    p = cmds.add_parser("status", help="the queue, or one submission's result")
    p.add_argument("dir", nargs="?", help="challenge folder (not with --hub)")
    p.add_argument("--hub", metavar="URL", help="your team's submissions, from the hub's service")
    p.add_argument("--token", help="with --hub: a JupyterHub token ($JUPYTERHUB_API_TOKEN)")
    p.add_argument("--team", help="only this team (default for --id: $JUPYTERHUB_USER)")
    p.add_argument("--id", type=int, help="one submission: scores (and cases, if visible)")
    p.add_argument("--instructor", action="store_true", help="with --id: everything, any team")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)

    from medai_lab.challenge.kube.command import add_parser as add_kube_parser

    add_kube_parser(cmds)


def _create(args: argparse.Namespace) -> int:
    from medai_lab.challenge.api import Challenge

    if args.spec:
        if args.task or args.validation or args.test:
            raise ChallengeError("give either --spec or --task with --validation/--test")
        ch = Challenge.create(args.dir, args.spec)
    else:
        if not args.task:
            raise ChallengeError("give --spec FILE, or --task with --validation and/or --test")
        ch = Challenge.create_from_data(
            args.dir, args.task, validation=args.validation, test=args.test, name=args.name
        )
    print(f"created challenge {ch.spec.name!r} in {ch.root}")
    for ph in ch.spec.phases:
        from medai_lab.challenge.runner import phase_cases

        kind = "hidden" if ph.hidden else "visible"
        print(
            f"  phase {ph.name} ({kind}): {len(phase_cases(ph))} cases; accepts "
            f"{', '.join(ph.formats)}; {ph.submissions_per_day} submission(s)/team/day"
        )
    return 0


def _submit(args: argparse.Namespace) -> int:
    from medai_lab.challenge.api import Challenge

    if args.hub:
        if args.path is not None or args.team:
            raise ChallengeError(
                "with --hub give only the submission (your hub user is the team): "
                "medai-lab challenge submit --hub URL PATH"
            )
        from medai_lab.challenge.service.client import submit_line

        print(submit_line(args.hub, args.dir, token=args.token, phase=args.phase, fmt=args.format))
        return 0
    if args.path is None:
        raise ChallengeError(
            "give the challenge folder and the submission (medai-lab challenge submit DIR PATH), "
            "or --hub URL PATH"
        )
    ch = Challenge.open(args.dir)
    row = ch.submit(args.path, team=args.team, phase=args.phase, fmt=args.format)
    queued = sum(1 for r in ch.submissions() if r["status"] == "queued")
    print(
        f"submission {row['id']} accepted for team {row['team']}, phase {row['phase']} "
        f"({row['format']}, sha256 {row['sha256'][:12]}); {queued} in the queue"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from medai_lab.challenge.api import Challenge
    from medai_lab.challenge.sandbox import isolation

    ch = Challenge.open(args.dir)
    if args.requeue:
        print(f"queued again: {ch.requeue_stale(every=True)}")
    if isolation() != "namespaces":
        print("note: no namespaces here (needs root and unshare): the sandbox has resource "
              "limits only; network and label isolation are not enforced")  # fmt: skip
    done = ch.evaluate(
        max_submissions=args.max,
        watch_s=args.watch,
        track=not args.no_track,
        tracking_uri=args.tracking_uri,
        log=print,
        workers=args.workers,
        gpu_pool=_gpu_pool(args.gpus, args.gpu_state) if args.gpus else None,
    )
    print(f"evaluated {len(done)} submission(s)")
    return 1 if any(r["status"] == "error" for r in done) else 0


def _gpu_pool(inventory: str, state: str | None) -> Any:
    """The hub's allocator over ``inventory`` (the CLI ties the layers; the core takes any pool)."""
    from medai_lab.hub.allocator import GpuAllocator  # top layer: only here, in the CLI glue
    from medai_lab.hub.inventory import parse_inventory
    from medai_lab.hub.policy import Policy

    if not state:
        raise ChallengeError("--gpus needs --gpu-state FILE (the hub's GPU state file)")
    devices = parse_inventory(inventory)
    policy = Policy(max_per_user=max(1, len(devices)))
    return GpuAllocator(devices, policy, state_path=state)


def _dry_run(args: argparse.Namespace) -> int:
    from medai_lab.challenge.api import Challenge
    from medai_lab.challenge.dryrun import describe

    ch = Challenge.open(args.dir)
    report = ch.dry_run(
        args.path, args.team, phase=args.phase, fmt=args.format, max_cases=args.max_cases
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(describe(report)))
    return 0 if report["ok"] else 1


def _leaderboard(args: argparse.Namespace) -> int:
    from medai_lab import atomic
    from medai_lab.challenge.api import Challenge
    from medai_lab.challenge.leaderboard import format_table, to_html

    ch = Challenge.open(args.dir)
    phase = ch.spec.phase(args.phase)
    board = ch.leaderboard(phase.name, public=args.public)
    print(format_table(board, ch.spec, phase))
    if args.html:
        atomic.write_text(args.html, to_html(board, ch.spec, phase))
        print(f"wrote {args.html}")
    if args.csv:
        from medai_lab.evaluation import write_csv_atomic

        write_csv_atomic(board, args.csv)
        print(f"wrote {args.csv}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from medai_lab.challenge.api import Challenge

    if args.hub:
        from medai_lab.challenge.service.client import status_lines

        print("\n".join(status_lines(args.hub, token=args.token)))
        return 0
    if args.dir is None:
        raise ChallengeError("give the challenge folder, or --hub URL")
    ch = Challenge.open(args.dir)
    if args.id is not None:
        res = ch.result(args.id, team=None if args.instructor else (args.team or ""))
        if args.json:
            print(json.dumps(res, indent=2, default=str))
            return 0
        from medai_lab.challenge.api import describe_result

        print(describe_result(res))
        for row in res.get("cases", []):
            print(
                f"  {row['case']} {row['label_name']}: {row['status']}, Dice {row['dice']:.3f}, "
                f"HD95 {row['hd95']:.2f}, NSD {row['nsd']:.3f}"
            )
        return 0
    rows = ch.submissions(team=args.team)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no submissions")
    for r in rows:
        print(
            f"{r['id']:>4}  {r['created_at']}  {r['team']:<16} {r['phase']:<12} "
            f"{r['format']:<12} {r['status']}"
        )
    return 0

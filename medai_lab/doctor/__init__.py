"""``medai-lab doctor``: what this machine has for MedAI Lab, and how to fix what is missing.

Every check gives one line, ``ok``, ``warn`` or ``fail``, with the fix on the next line. The
command exits 1 only when a check fails. Checks run in parallel threads and never import torch
(versions come from package metadata, GPUs from NVML), so the whole report takes about a
second; ``--deep`` also imports torch in a subprocess to see what it sees.

>>> from medai_lab.doctor import run_checks
>>> report = run_checks()
>>> report.worst()  # "ok", "warn" or "fail"
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Report", "add_parser", "format_report", "run_checks"]

STATUSES = ("ok", "warn", "fail")


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes
    ----------
    name
        What was checked (``python``, ``torch``, ``gpu``, ``dcm2niix`` ...).
    status
        ``ok``, ``warn`` (works, but something is missing or suboptimal) or ``fail``.
    detail
        What was found.
    fix
        What to do about it (empty when ``ok``).
    """

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    """All checks, in a fixed order, and how long they took."""

    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def worst(self) -> str:
        """``fail`` if any check failed, else ``warn`` if any warned, else ``ok``."""
        found = {c.status for c in self.checks}
        return next((s for s in reversed(STATUSES) if s in found), "ok")

    def counts(self) -> dict[str, int]:
        """Number of checks per status."""
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``--json`` prints)."""
        return {
            "status": self.worst(),
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "checks": [asdict(c) for c in self.checks],
        }


def run_checks(deep: bool = False) -> Report:
    """Run every check (in parallel threads) and return them in a fixed order."""
    from medai_lab.doctor import checks, gpu, peers

    start = time.perf_counter()
    groups = [
        checks.python_env,
        gpu.torch_and_gpus if not deep else gpu.torch_and_gpus_deep,
        checks.cpu_memory,
        checks.shared_memory,
        checks.disk_space,
        checks.mlflow_store,
        checks.deid_key,
        checks.node_npm,
        peers.optional_peers,
    ]
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        futures = [pool.submit(_safe, fn) for fn in groups]
        found = [c for f in futures for c in f.result()]
    return Report(found, time.perf_counter() - start)


def _safe(fn: Any) -> list[Check]:
    """A check that breaks must not hide the others: it becomes a warn line of its own."""
    try:
        return list(fn())
    except Exception as exc:
        name = getattr(fn, "__name__", "check").replace("_", " ")
        return [Check(name, "warn", f"could not check: {type(exc).__name__}: {exc}")]


def format_report(report: Report) -> str:
    """The report as aligned text lines (fix lines indented under their check)."""
    width = max((len(c.name) for c in report.checks), default=8)
    lines = [f"MedAI Lab doctor ({report.seconds:.1f} s)"]
    for c in report.checks:
        lines.append(f"  {c.status:<5} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"  {'':<5} {'':<{width}}  fix: {c.fix}")
    n = report.counts()
    lines.append(f"{n['ok']} ok, {n['warn']} warn, {n['fail']} fail")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    report = run_checks(deep=args.deep)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 1 if report.worst() == "fail" else 0


def add_parser(sub: Any) -> None:
    """Register ``doctor`` on the main parser's subparsers."""
    p = sub.add_parser(
        "doctor",
        help="what this machine has for MedAI Lab and how to fix what is missing",
        description="Checks Python, torch and its CUDA build, GPUs (NVML, MIG), /dev/shm, the "
        "MLflow store, node/npm, optional tools, the de-identification key and disk space. "
        "Exits 1 only when a check fails.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--deep", action="store_true", help="also import torch (a few seconds) to see its devices"
    )
    p.set_defaults(func=_run)

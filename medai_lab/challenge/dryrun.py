"""A dry run: the submission in the evaluation sandbox, on visible cases, before a test slot.

The same checks as a submission (:func:`medai_lab.challenge.submission.inspect`), the same
sandbox (isolation, limits: time per case, startup time, memory, output size, processes) and
the same kind of slot (its CPU cores, a GPU unit from the pool when the spec asks for one),
run on the cases of the first visible phase. What comes back is what the evaluator would
record: per case a status (``ok`` or a failure category: ``timeout``, ``oom``, ``crash``,
``invalid_output`` ...) and wall seconds, the worker's peak memory, and the sandbox notes.

Nothing is stored in the challenge: no database row (so no submission slot of the day is
used), no copy under ``submissions/``, no results, no leaderboard change. The copy the sandbox
runs from lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.spec import ENTRY

if TYPE_CHECKING:
    from medai_lab.challenge.api import Challenge


def dry_run(
    ch: Challenge,
    path: str | os.PathLike[str],
    team: str | None = None,
    *,
    phase: str | None = None,
    fmt: str | None = None,
    max_cases: int | None = None,
    sandbox_dir: str | os.PathLike[str] | None = None,
    gpu_pool: Any = None,
) -> dict[str, Any]:
    """Run ``path`` as a submission to ``phase`` on the visible cases (see module docstring).

    Returns
    -------
    dict
        ``team``, ``phase`` (the target), ``cases_from`` (the visible phase run on), ``format``,
        ``cases`` (``case``, ``status``, ``seconds``), ``failures`` (category -> count),
        ``peak_memory_mb``, ``limits`` and ``notes``; ``ok`` when every case passed.
    """
    from medai_lab.challenge import submission
    from medai_lab.challenge.api import resolve_team
    from medai_lab.challenge.runner import run_submission
    from medai_lab.challenge.slots import SlotPool

    who = resolve_team(team) if team or os.environ.get("JUPYTERHUB_USER") else None
    target = ch.spec.phase(phase)
    visible = next((p for p in ch.spec.phases if not p.hidden), None)
    if visible is None:
        raise ChallengeError("this challenge has no visible phase: there are no cases to dry-run")
    cand = submission.inspect(path, ch.spec, target, fmt)
    if cand.fmt == "predictions":
        raise ChallengeError("a dry run runs a model; a folder of predictions has nothing to run")
    sha = submission.content_hash(cand.files)
    limits = ch.spec.limits
    hide = [ch.root] + [p for ph in ch.spec.phases for p in (ph.images, ph.labels)]
    pool = SlotPool(1, limits.cpus, limits.gpu, gpu_pool)
    tmp = Path(tempfile.mkdtemp(prefix="medai-dryrun-"))
    slot = pool.acquire()
    try:
        stored = submission.store(cand, tmp / "sub", sha)
        run = run_submission(
            ch.spec, visible, cand.fmt, stored, ENTRY[cand.fmt], tmp / "pred", hide,
            sandbox_dir, slot, limit_cases=max_cases,
        )  # fmt: skip
    finally:
        pool.release(slot)
        submission.make_removable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    cases = [
        {"case": c, "status": status, "seconds": None if s is None else round(s, 3)}
        for c, (status, s) in run.cases.items()
    ]
    return {
        "team": who,
        "phase": target.name,
        "cases_from": visible.name,
        "format": cand.fmt,
        "cases": cases,
        "failures": run.failures,
        "peak_memory_mb": None if run.peak_memory_mb is None else round(run.peak_memory_mb, 1),
        "limits": {
            "time_per_case_s": limits.time_per_case_s,
            "startup_s": limits.startup_s,
            "memory_mb": limits.memory_mb,
            "cpus": limits.cpus,
            "gpu": limits.gpu,
        },
        "notes": run.notes,
        "ok": not run.failures,
    }


def describe(report: dict[str, Any]) -> list[str]:
    """Lines for the terminal: one per case, then memory and a verdict."""
    lines = [
        f"dry run of a {report['format']} submission for phase {report['phase']} on "
        f"{len(report['cases'])} case(s) of phase {report['cases_from']} (nothing stored)"
    ]
    limit = report["limits"]["time_per_case_s"]
    for c in report["cases"]:
        took = "-" if c["seconds"] is None else f"{c['seconds']:.2f} s"
        lines.append(f"  {c['case']}: {c['status']} ({took}; limit {limit:g} s)")
    peak = report["peak_memory_mb"]
    mem = "n/a" if peak is None else f"{peak:.0f} MiB"
    lines.append(f"peak memory {mem} (limit {report['limits']['memory_mb']} MiB)")
    if report["ok"]:
        lines.append("all cases passed")
    else:
        fails = ", ".join(f"{n} {c}" for c, n in report["failures"].items())
        lines.append(f"failed: {fails}")
    return lines

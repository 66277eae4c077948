"""What the challenge service answers, as plain JSON-ready data: one team's view only.

Every function takes the team (the hub user) the caller is; nothing here returns another
team's submissions, notes, hashes or per-case rows of a hidden phase (the rules of
:meth:`Challenge.result`).
"""

from __future__ import annotations

import math
from typing import Any

from medai_lab.challenge.api import Challenge


def info(ch: Challenge, team: str) -> dict[str, Any]:
    """The challenge's name, phases and limits, and who the caller is."""
    spec = ch.spec
    return {
        "name": spec.name,
        "title": spec.title,
        "task": spec.task,
        "team": team,
        "submission_mb": spec.limits.submission_mb,
        "phases": [
            {
                "name": ph.name,
                "hidden": ph.hidden,
                "formats": list(ph.formats),
                "submissions_per_day": ph.submissions_per_day,
            }
            for ph in spec.phases
        ],
    }


def status(ch: Challenge, team: str, phase: str | None = None) -> list[dict[str, Any]]:
    """The team's own submissions, newest first, each as the team may see it."""
    rows = ch.submissions(team=team, phase=phase)
    return [clean(ch.result(int(r["id"]), team=team)) for r in reversed(rows)]


def one(ch: Challenge, team: str, submission_id: int) -> dict[str, Any]:
    """One of the team's submissions; :class:`LookupError` for any other id (another team's
    and a missing one read the same, so ids of others cannot be probed)."""
    if not any(int(r["id"]) == submission_id for r in ch.submissions(team=team)):
        raise LookupError(f"team {team!r} has no submission {submission_id}")
    return clean(ch.result(submission_id, team=team))


def leaderboard(ch: Challenge, phase: str | None = None) -> dict[str, Any]:
    """The ranked table of a phase as teams may see it (a hidden phase per its feedback
    settings: rounded or partial scores, no intervals)."""
    ph = ch.spec.phase(phase)
    board = ch.leaderboard(ph.name, public=True)
    return {"phase": ph.name, "hidden": ph.hidden, "rows": clean(board.to_dict("records"))}


def clean(value: Any) -> Any:
    """JSON-safe: NaN/inf as null, NumPy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""GPU-hours per user from the allocation ledger, as rows or CSV.

A whole GPU or a MIG instance held for one hour counts 1 unit-hour and 1 GPU-hour (a MIG
instance is counted as a unit, not a fraction of its GPU); a time-sliced share counts
1 unit-hour and its memory fraction of a GPU-hour. Open sessions count up to ``until``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from medai_lab.atomic import write_text
from medai_lab.hub.state import StateStore

FIELDS = ("user", "gpu_hours", "unit_hours", "sessions", "open_sessions", "first_start", "last_end")


@dataclass(frozen=True)
class UserUsage:
    """GPU use of one user in a time window."""

    user: str
    gpu_hours: float
    unit_hours: float
    sessions: int
    open_sessions: int
    first_start: float
    last_end: float


def usage_by_user(
    state_path: str | Path, since: float = 0.0, until: float | None = None
) -> list[UserUsage]:
    """Sum the ledger per user over ``[since, until]`` (epoch seconds; sessions are clipped).

    Returns
    -------
    list of UserUsage
        Sorted by GPU-hours, largest first, then by user name.
    """
    until = time.time() if until is None else until
    store = StateStore(state_path)
    try:
        with store.read() as conn:
            rows = conn.execute(
                "SELECT user, gpu_fraction, start, end FROM usage WHERE start <= ? "
                "AND (end IS NULL OR end >= ?)",
                (until, since),
            ).fetchall()
    finally:
        store.close()
    acc: dict[str, list[float]] = {}
    for r in rows:
        start, end = max(r["start"], since), min(r["end"] if r["end"] is not None else until, until)
        hours = max(0.0, end - start) / 3600.0
        a = acc.setdefault(r["user"], [0.0, 0.0, 0, 0, float("inf"), 0.0])
        a[0] += hours * r["gpu_fraction"]
        a[1] += hours
        a[2] += 1
        a[3] += r["end"] is None
        a[4] = min(a[4], r["start"])
        a[5] = max(a[5], end)
    out = [UserUsage(u, a[0], a[1], int(a[2]), int(a[3]), a[4], a[5]) for u, a in acc.items()]
    return sorted(out, key=lambda x: (-x.gpu_hours, x.user))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def write_usage_csv(
    state_path: str | Path, out: str | Path, since: float = 0.0, until: float | None = None
) -> list[UserUsage]:
    """Write :func:`usage_by_user` as CSV (atomically; hours with 4 decimals, UTC times).

    Returns
    -------
    list of UserUsage
        The rows written.
    """
    import io

    rows = usage_by_user(state_path, since, until)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in rows:
        writer.writerow(
            [
                r.user,
                f"{r.gpu_hours:.4f}",
                f"{r.unit_hours:.4f}",
                r.sessions,
                r.open_sessions,
                _iso(r.first_start),
                _iso(r.last_end),
            ]
        )
    write_text(Path(out), buf.getvalue())
    return rows

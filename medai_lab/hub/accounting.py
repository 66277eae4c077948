"""Usage per user (server sessions, server-hours, GPU-hours) from the hub's ledger, as rows or CSV.

Every server session counts, on the CPU profile too (a hub without GPUs still has users). A
whole GPU or a MIG instance held for one hour counts 1 unit-hour and 1 GPU-hour (a MIG
instance is counted as a unit, not a fraction of its GPU); a time-sliced share counts
1 unit-hour and its memory fraction of a GPU-hour. Open sessions count up to ``until``.
State files written before session records existed fall back to the GPU ledger alone.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medai_lab.atomic import write_text
from medai_lab.hub.state import StateStore

FIELDS = (
    "user",
    "gpu_hours",
    "unit_hours",
    "server_hours",
    "sessions",
    "open_sessions",
    "first_start",
    "last_end",
)


@dataclass(frozen=True)
class UserUsage:
    """Hub use of one user in a time window (``server_hours``: time their servers ran)."""

    user: str
    gpu_hours: float
    unit_hours: float
    server_hours: float
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
        Sorted by GPU-hours, largest first, then by server-hours, then by user name.
    """
    until = time.time() if until is None else until
    window = "start <= ? AND (end IS NULL OR end >= ?)"
    store = StateStore(state_path)
    try:
        with store.read() as conn:
            units = conn.execute(
                f"SELECT user, server, gpu_fraction, start, end FROM usage WHERE {window}",
                (until, since),
            ).fetchall()
            runs = conn.execute(
                f"SELECT user, server, start, end FROM sessions WHERE {window}", (until, since)
            ).fetchall()
    finally:
        store.close()

    def hours(r: Any) -> tuple[float, float]:
        end = min(r["end"] if r["end"] is not None else until, until)
        return max(0.0, end - max(r["start"], since)) / 3600.0, end

    gpu: dict[str, list[float]] = {}
    for r in units:
        h, _ = hours(r)
        g = gpu.setdefault(r["user"], [0.0, 0.0])
        g[0] += h * r["gpu_fraction"]
        g[1] += h
    with_sessions = {r["user"] for r in runs}
    # Old state files have GPU rows but no session rows: each GPU row stands for a session.
    runs = [*runs, *(r for r in units if r["user"] not in with_sessions)]
    acc: dict[str, list[float]] = {}
    for r in runs:
        h, end = hours(r)
        a = acc.setdefault(r["user"], [0.0, 0, 0, float("inf"), 0.0])
        a[0] += h
        a[1] += 1
        a[2] += r["end"] is None
        a[3] = min(a[3], r["start"])
        a[4] = max(a[4], end)
    out = [
        UserUsage(u, *gpu.get(u, [0.0, 0.0]), a[0], int(a[1]), int(a[2]), a[3], a[4])
        for u, a in acc.items()
    ]
    return sorted(out, key=lambda x: (-x.gpu_hours, -x.server_hours, x.user))


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
                f"{r.server_hours:.4f}",
                r.sessions,
                r.open_sessions,
                _iso(r.first_start),
                _iso(r.last_end),
            ]
        )
    write_text(Path(out), buf.getvalue())
    return rows

"""The evaluation queue in the challenge database: fair, atomic claims held by leases.

A claim is one ``BEGIN IMMEDIATE`` transaction: it picks the next submission and marks it
``running`` with the evaluator's lease (``host:pid:token``) and a heartbeat time. Whatever an
evaluator writes later (scores, an error, handing a submission back) is conditional on the
submission still carrying its lease, in the same transaction as the write; so a submission is
scored at most once, even when a stalled evaluator wakes up after its lease was taken over.

Order: round-robin between teams (the team whose last claim is oldest goes first, a team never
served before goes before all), each team's oldest submission first, and no team holds more
than its concurrency limit of running submissions.

Stale leases: a submission whose evaluator process is gone (same host, pid dead) or whose
heartbeat is older than ``stale_s`` goes back to the queue (:func:`requeue_stale`); the
evaluator calls it when it starts, so a restart after ``kill -9`` resumes the queue.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from medai_lab.challenge.process import pid_alive
from medai_lab.challenge.store import Store, utc_now

STALE_S = 60.0
HEARTBEAT_S = 5.0


def new_lease() -> str:
    """``host:pid:token`` of this evaluator."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def claim(store: Store, lease: str, team_limit: int = 1) -> dict[str, Any] | None:
    """Mark the next submission (see module docstring) running under ``lease``; None: none."""
    with store.connect(write=True) as con:
        store.migrate(con)
        rows = con.execute(
            "SELECT id, team, status, claim_seq FROM submissions "
            "WHERE status IN ('queued', 'running') OR claim_seq IS NOT NULL ORDER BY id"
        ).fetchall()
        running = Counter(r["team"] for r in rows if r["status"] == "running")
        last: dict[str, int] = {}
        for r in rows:
            if r["claim_seq"] is not None:
                last[r["team"]] = max(last.get(r["team"], -1), int(r["claim_seq"]))
        first: dict[str, int] = {}
        for r in rows:
            if r["status"] == "queued" and r["team"] not in first:
                first[r["team"]] = int(r["id"])
        ready = [(last.get(t, -1), sid) for t, sid in first.items() if running[t] < team_limit]
        if not ready:
            return None
        _, sid = min(ready)
        seq = max(last.values(), default=-1) + 1
        con.execute(
            "UPDATE submissions SET status = 'running', started_at = ?, lease = ?, "
            "heartbeat_at = ?, claim_seq = ? WHERE id = ?",
            (utc_now().isoformat(timespec="seconds"), lease, time.time(), seq, sid),
        )
        row = con.execute("SELECT * FROM submissions WHERE id = ?", (sid,)).fetchone()
    return dict(row)


def queued(store: Store) -> int:
    """Submissions waiting in the queue."""
    with store.connect() as con:
        return int(
            con.execute("SELECT COUNT(*) FROM submissions WHERE status = 'queued'").fetchone()[0]
        )


def heartbeat(store: Store, lease: str) -> int:
    """Renew every lease of this evaluator; how many submissions it holds."""
    with store.connect(write=True) as con:
        cur = con.execute(
            "UPDATE submissions SET heartbeat_at = ? WHERE status = 'running' AND lease = ?",
            (time.time(), lease),
        )
        return cur.rowcount


def holds(con: Any, submission_id: int, lease: str) -> bool:
    """Inside a transaction: does ``lease`` still hold the submission?"""
    row = con.execute(
        "SELECT 1 FROM submissions WHERE id = ? AND status = 'running' AND lease = ?",
        (submission_id, lease),
    ).fetchone()
    return row is not None


def finish(
    store: Store, submission_id: int, lease: str, status: str, notes: Sequence[str] = ()
) -> bool:
    """End a held submission as ``status`` (``scored``/``error``); False if the lease was lost."""
    with store.connect(write=True) as con:
        if not holds(con, submission_id, lease):
            return False
        _end(con, submission_id, status, notes)
    return True


def complete(
    store: Store,
    submission_id: int,
    lease: str,
    results: tuple[dict[str, tuple[str, float | None]], list[dict[str, Any]], dict[str, Any]],
    notes: Sequence[str] = (),
) -> bool:
    """Write the results (cases, metric rows, score) and mark scored, in one transaction."""
    with store.connect(write=True) as con:
        if not holds(con, submission_id, lease):
            return False
        store.write_results(con, submission_id, *results)
        _end(con, submission_id, "scored", notes)
    return True


def release(store: Store, submission_id: int, lease: str) -> bool:
    """Hand a held submission back to the queue (the evaluator, not the submission, failed)."""
    with store.connect(write=True) as con:
        if not holds(con, submission_id, lease):
            return False
        _requeue(con, [submission_id])
    return True


def requeue_stale(store: Store, stale_s: float = STALE_S, every: bool = False) -> list[int]:
    """Queue again what dead or silent evaluators left running (``every``: all running)."""
    host, now = socket.gethostname(), time.time()
    with store.connect(write=True) as con:
        store.migrate(con)
        rows = con.execute(
            "SELECT id, lease, heartbeat_at FROM submissions WHERE status = 'running'"
        ).fetchall()
        stale = [int(r["id"]) for r in rows if every or _is_stale(r, host, now, stale_s)]
        _requeue(con, stale)
    return stale


def _is_stale(row: Any, host: str, now: float, stale_s: float) -> bool:
    if not row["lease"] or row["heartbeat_at"] is None:
        return True  # left by an evaluator without leases
    if now - float(row["heartbeat_at"]) > stale_s:
        return True
    lease_host, _, rest = str(row["lease"]).partition(":")
    pid = rest.partition(":")[0]
    return lease_host == host and pid.isdigit() and not pid_alive(int(pid))


def _requeue(con: Any, ids: list[int]) -> None:
    con.executemany(
        "UPDATE submissions SET status = 'queued', started_at = NULL, lease = NULL, "
        "heartbeat_at = NULL WHERE id = ?",
        [(i,) for i in ids],
    )


def _end(con: Any, submission_id: int, status: str, notes: Sequence[str]) -> None:
    con.execute(
        "UPDATE submissions SET status = ?, finished_at = ?, notes = ?, lease = NULL WHERE id = ?",
        (status, utc_now().isoformat(timespec="seconds"), "; ".join(notes), submission_id),
    )


class Heartbeat:
    """A daemon thread renewing an evaluator's leases every ``every`` seconds until stopped."""

    def __init__(self, store: Store, lease: str, every: float = HEARTBEAT_S) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(store, lease, every), name="challenge-heartbeat", daemon=True
        )

    def _run(self, store: Store, lease: str, every: float) -> None:
        while not self._stop.wait(every):
            try:
                heartbeat(store, lease)
            except Exception:  # a locked or briefly unavailable database: try again next beat
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

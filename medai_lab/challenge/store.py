"""The challenge database (SQLite): submissions and their queue, case outcomes, metrics, scores.

One file, ``<challenge>/challenge.db``, in WAL mode so that the evaluator and submitting
users can work at the same time. Rows of submissions are never deleted; only the status
columns of a submission change (queued -> running -> scored | error), with the evaluator's
lease while it runs (:mod:`medai_lab.challenge.claims`). The daily submission cap is a
trigger in the database (``quotas`` table, kept in step with the spec on every submit), so a
writer that bypasses :meth:`Challenge.submit` meets it too.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    team TEXT NOT NULL,
    phase TEXT NOT NULL,
    format TEXT NOT NULL,
    created_at TEXT NOT NULL,
    day TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    started_at TEXT,
    finished_at TEXT,
    notes TEXT NOT NULL DEFAULT '',
    lease TEXT,
    heartbeat_at REAL,
    claim_seq INTEGER,
    UNIQUE (team, phase, sha256)
);
CREATE INDEX IF NOT EXISTS submissions_status ON submissions (status, id);
CREATE TABLE IF NOT EXISTS cases (
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    case_id TEXT NOT NULL,
    status TEXT NOT NULL,
    seconds REAL,
    PRIMARY KEY (submission_id, case_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    case_id TEXT NOT NULL,
    label INTEGER NOT NULL,
    label_name TEXT NOT NULL,
    dice REAL, hd95 REAL, nsd REAL,
    truth_voxels INTEGER, pred_voxels INTEGER,
    PRIMARY KEY (submission_id, case_id, label)
);
CREATE TABLE IF NOT EXISTS scores (
    submission_id INTEGER PRIMARY KEY REFERENCES submissions (id),
    n_cases INTEGER NOT NULL,
    n_failed INTEGER NOT NULL,
    failures TEXT NOT NULL,
    dice_mean REAL, dice_ci_low REAL, dice_ci_high REAL,
    hd95_mean REAL, hd95_ci_low REAL, hd95_ci_high REAL,
    nsd_mean REAL, nsd_ci_low REAL, nsd_ci_high REAL,
    per_label TEXT NOT NULL,
    mlflow_run_id TEXT
);
"""
# The daily cap lives in the database: a trigger refuses the row whoever inserts it.
QUOTA_TABLE = "CREATE TABLE IF NOT EXISTS quotas (phase TEXT PRIMARY KEY, per_day INTEGER NOT NULL)"
QUOTA_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS submissions_quota BEFORE INSERT ON submissions
WHEN (SELECT COUNT(*) FROM submissions
      WHERE team = NEW.team AND phase = NEW.phase AND day = NEW.day)
     >= (SELECT per_day FROM quotas WHERE phase = NEW.phase)
BEGIN SELECT RAISE(ABORT, 'submission quota reached'); END
"""
LEASE_COLUMNS = {"lease": "TEXT", "heartbeat_at": "REAL", "claim_seq": "INTEGER"}
METRIC_COLUMNS = ("dice", "hd95", "nsd")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """Access to one challenge database (opened per call; safe across processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; with ``write`` the block is one ``BEGIN IMMEDIATE`` transaction."""
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA foreign_keys = ON")
            if write:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            else:
                yield con
        finally:
            con.close()

    def create(self) -> None:
        with self.connect() as con:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(SCHEMA)
            con.execute(QUOTA_TABLE)
            con.execute(QUOTA_TRIGGER)

    def migrate(self, con: sqlite3.Connection) -> None:
        """Bring a database made by an older version up to date (inside a write transaction)."""
        have = {r[1] for r in con.execute("PRAGMA table_info(submissions)")}
        for col, kind in LEASE_COLUMNS.items():
            if col not in have:
                con.execute(f"ALTER TABLE submissions ADD COLUMN {col} {kind}")
        con.execute(QUOTA_TABLE)
        con.execute(QUOTA_TRIGGER)

    def set_quotas(self, con: sqlite3.Connection, per_day: dict[str, int]) -> None:
        """The daily cap per phase, as the spec says (the trigger enforces it)."""
        self.migrate(con)
        con.executemany("INSERT OR REPLACE INTO quotas VALUES (?, ?)", list(per_day.items()))

    # --- submissions ----------------------------------------------------------------------

    def count_today(self, con: sqlite3.Connection, team: str, phase: str, day: str) -> int:
        row = con.execute(
            "SELECT COUNT(*) FROM submissions WHERE team = ? AND phase = ? AND day = ?",
            (team, phase, day),
        ).fetchone()
        return int(row[0])

    def find(self, con: sqlite3.Connection, team: str, phase: str, sha: str) -> sqlite3.Row | None:
        return con.execute(
            "SELECT * FROM submissions WHERE team = ? AND phase = ? AND sha256 = ?",
            (team, phase, sha),
        ).fetchone()

    def insert(self, con: sqlite3.Connection, **row: Any) -> int:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur = con.execute(f"INSERT INTO submissions ({cols}) VALUES ({marks})", tuple(row.values()))
        return int(cur.lastrowid or 0)

    def get(self, submission_id: int) -> dict[str, Any] | None:
        with self.connect() as con:
            row = con.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        return dict(row) if row is not None else None

    def submissions(
        self, team: str | None = None, phase: str | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM submissions WHERE 1 = 1", []
        if team is not None:
            sql, args = sql + " AND team = ?", [*args, team]
        if phase is not None:
            sql, args = sql + " AND phase = ?", [*args, phase]
        with self.connect() as con:
            return [dict(r) for r in con.execute(sql + " ORDER BY id", args)]

    def finish(self, submission_id: int, status: str, notes: Sequence[str] = ()) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "UPDATE submissions SET status = ?, finished_at = ?, notes = ? WHERE id = ?",
                (status, utc_now().isoformat(timespec="seconds"), "; ".join(notes), submission_id),
            )

    def add_note(self, submission_id: int, note: str) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "UPDATE submissions SET notes = CASE WHEN notes = '' THEN ? "
                "ELSE notes || '; ' || ? END WHERE id = ?",
                (note, note, submission_id),
            )

    # --- results --------------------------------------------------------------------------

    def save_results(
        self,
        submission_id: int,
        cases: dict[str, tuple[str, float | None]],
        rows: list[dict[str, Any]],
        score: dict[str, Any],
    ) -> None:
        """Case outcomes, per-case metric rows and the aggregate score, in one transaction."""
        with self.connect(write=True) as con:
            self.write_results(con, submission_id, cases, rows, score)

    def write_results(
        self,
        con: sqlite3.Connection,
        submission_id: int,
        cases: dict[str, tuple[str, float | None]],
        rows: list[dict[str, Any]],
        score: dict[str, Any],
    ) -> None:
        """:meth:`save_results` inside the caller's transaction."""
        for table in ("cases", "metrics", "scores"):
            con.execute(f"DELETE FROM {table} WHERE submission_id = ?", (submission_id,))
        con.executemany(
            "INSERT INTO cases VALUES (?, ?, ?, ?)",
            [(submission_id, c, s, t) for c, (s, t) in sorted(cases.items())],
        )
        con.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (submission_id, r["case"], int(r["label"]), str(r["label_name"]),
                 _real(r["dice"]), _real(r["hd95"]), _real(r["nsd"]),
                 int(r["truth_voxels"]), int(r["pred_voxels"]))
                for r in rows
            ],
        )  # fmt: skip
        cols = ["submission_id", *score]
        values = [submission_id, *(_json_or_real(v) for v in score.values())]
        marks = ", ".join("?" for _ in cols)
        con.execute(f"INSERT INTO scores ({', '.join(cols)}) VALUES ({marks})", values)

    def set_run_id(self, submission_id: int, run_id: str) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "UPDATE scores SET mlflow_run_id = ? WHERE submission_id = ?",
                (run_id, submission_id),
            )

    def score(self, submission_id: int) -> dict[str, Any] | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT * FROM scores WHERE submission_id = ?", (submission_id,)
            ).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["failures"] = json.loads(out["failures"])
        out["per_label"] = json.loads(out["per_label"])
        return out

    def scored(self, phase: str) -> list[dict[str, Any]]:
        """Scored submissions of a phase joined with their scores, oldest first."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT s.*, c.* FROM submissions s JOIN scores c ON c.submission_id = s.id "
                "WHERE s.phase = ? AND s.status = 'scored' ORDER BY s.id",
                (phase,),
            ).fetchall()
        return [dict(r) for r in rows]

    def metric_rows(self, submission_id: int) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT case_id AS 'case', label, label_name, dice, hd95, nsd, truth_voxels, "
                "pred_voxels FROM metrics WHERE submission_id = ? ORDER BY case_id, label",
                (submission_id,),
            ).fetchall()
        return [{k: (math.nan if v is None else v) for k, v in dict(r).items()} for r in rows]

    def case_rows(self, submission_id: int) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT case_id AS 'case', status, seconds FROM cases WHERE submission_id = ? "
                "ORDER BY case_id",
                (submission_id,),
            ).fetchall()
        return [dict(r) for r in rows]


def _real(value: Any) -> float | None:
    """SQLite stores NaN as NULL; read back as NaN."""
    value = float(value)
    return None if math.isnan(value) else value


def _json_or_real(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, float):
        return _real(value)
    return value

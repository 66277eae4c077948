"""The persistent allocation state: one SQLite file, so a hub restart keeps who holds which GPU.

Three tables: ``allocations`` (one row per held unit; the unit id is the primary key, so the
database itself refuses to hand a unit out twice), ``usage`` (one row per held unit and
server session, closed on release: the GPU-hours ledger) and ``sessions`` (one row per server
session, GPU or CPU profile alike, closed on release: who used the hub, and for how long).
Every write runs in a ``BEGIN IMMEDIATE`` transaction: concurrent writers, threads or
processes, are serialised.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS allocations (
    device TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    server TEXT NOT NULL,
    charged_group TEXT,
    start REAL NOT NULL,
    pid INTEGER,
    usage_id INTEGER
);
CREATE INDEX IF NOT EXISTS allocations_owner ON allocations (user, server);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    server TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    gpu_fraction REAL NOT NULL,
    start REAL NOT NULL,
    end REAL
);
CREATE INDEX IF NOT EXISTS usage_user ON usage (user);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    server TEXT NOT NULL,
    profile TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions (user, server);
"""


class StateStore:
    """A SQLite file shared by every allocator that points at it.

    Parameters
    ----------
    path
        The database file (created with its folder when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # One connection for the store's life: opening and closing one per operation makes
        # SQLite checkpoint the WAL on every close (about 1 ms each).
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: commits survive a crashed hub; only a power cut may lose the last ones.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE`` (committed on success, rolled back on error).

        The in-process lock serialises threads of one hub; the immediate transaction
        serialises separate processes sharing the file (they wait up to 30 s for each other).
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (each statement sees a consistent snapshot)."""
        with self._lock:
            yield self._conn

    def close(self) -> None:
        """Close the connection (the store is unusable afterwards)."""
        self._conn.close()

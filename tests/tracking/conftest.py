"""Tracking-test fixtures: every test gets its own SQLite store under tmp_path.

Creating an MLflow SQLite schema runs all its migrations (seconds), so one empty store is made
per session and copied into each test's tmp_path.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mlflow")
    from medai_lab.tracking import make_client

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    make_client(f"sqlite:///{db.as_posix()}").search_experiments()  # creates the schema
    return db


@pytest.fixture
def store(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tracking URI of a fresh SQLite store in tmp_path (also set as MLFLOW_TRACKING_URI)."""
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """Lightning leaves SIGINT ignored after a KeyboardInterrupt; put both handlers back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)

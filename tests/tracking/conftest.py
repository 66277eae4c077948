"""Tracking-test fixtures (the ``store`` fixture lives in tests/conftest.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """Lightning leaves SIGINT ignored after a KeyboardInterrupt; put both handlers back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)

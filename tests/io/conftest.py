"""Fixtures of the io tests: the real reference tools they compare against."""

from __future__ import annotations

import pytest
from rtstruct_helpers import which_plastimatch  # tests/io/rtstruct_helpers.py
from testsupport import missing_component


@pytest.fixture(scope="session")
def plastimatch() -> str:
    """plastimatch, the RTSTRUCT reference (fails in CI when missing, skips elsewhere)."""
    exe = which_plastimatch()
    if exe is None:
        missing_component("plastimatch (Debian package plastimatch)")
    return exe

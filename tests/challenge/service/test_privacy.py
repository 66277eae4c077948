"""The service keeps the challenge folder to the evaluator's account and says when hidden
labels are readable by others."""

from __future__ import annotations

import os
import stat

import pytest
from testsupport import missing_component

from medai_lab.challenge import ChallengeError
from medai_lab.challenge.service.privacy import make_private


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folder_and_database_become_private_and_open_labels_are_named(make_challenge):
    ch = make_challenge()
    os.chmod(ch.root, 0o777)
    os.chmod(ch.root / "challenge.db", 0o666)
    hidden = ch.spec.phase("test").labels
    before = _mode(hidden)
    os.chmod(hidden, 0o755)
    try:
        warnings = make_private(ch)
        assert _mode(ch.root) == 0o700
        assert _mode(ch.root / "challenge.db") == 0o600
        assert _mode(ch.root / "challenge.yaml") == 0o600
        assert len(warnings) == 1 and "'test'" in warnings[0] and str(hidden) in warnings[0]
        assert _mode(hidden) == 0o755  # named, not changed: it is the organiser's folder
        os.chmod(hidden, 0o700)
        assert make_private(ch) == []
    finally:
        os.chmod(hidden, before)
    assert ch.submissions() == []  # the service's own account still reads it


def test_a_folder_of_another_account_is_refused(make_challenge):
    if os.geteuid() != 0:
        missing_component("root (to give the challenge folder to another account)")
    ch = make_challenge()
    os.chown(ch.root, 65534, -1)  # nobody
    try:
        with pytest.raises(ChallengeError, match="belongs to uid 65534"):
            make_private(ch)
    finally:
        os.chown(ch.root, 0, -1)

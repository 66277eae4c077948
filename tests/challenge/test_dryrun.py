"""The dry run: same sandbox and limits on visible cases, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from challenge_helpers import HONEST, write_package

from medai_lab.challenge import ChallengeError

SLOW = """
    import time
    import numpy as np

    def predict(image, affine, context):
        time.sleep(30)
        return np.zeros(image.shape, np.uint8)
"""


def _nothing_stored(ch) -> None:
    assert ch.submissions() == []
    assert not any((ch.root / "submissions").iterdir())
    assert not any((ch.root / "results").iterdir())
    assert ch.leaderboard("validation").empty and ch.leaderboard("test").empty


def test_dry_run_reports_a_timeout_before_any_test_slot_is_used(make_challenge, tmp_path):
    ch = make_challenge(time_per_case_s=1, submissions_per_day=1)
    pkg = write_package(tmp_path / "slow", SLOW)
    report = ch.dry_run(pkg, "owls", phase="test", max_cases=1)
    assert report["failures"] == {"timeout": 1} and not report["ok"]
    assert report["cases"][0]["status"] == "timeout"
    assert report["cases_from"] == "validation" and report["phase"] == "test"
    _nothing_stored(ch)
    # the team's one test submission of the day is still there to use
    assert ch.submit(pkg, team="owls", phase="test")["status"] == "queued"


def test_dry_run_of_an_honest_package_times_each_case(make_challenge, tmp_path):
    ch = make_challenge()
    report = ch.dry_run(write_package(tmp_path / "honest", HONEST), "owls")
    assert report["ok"] and len(report["cases"]) == 2
    assert all(c["status"] == "ok" and c["seconds"] > 0 for c in report["cases"])
    assert report["peak_memory_mb"] > 0
    assert report["limits"]["memory_mb"] == ch.spec.limits.memory_mb
    _nothing_stored(ch)


def test_dry_run_refuses_what_submit_refuses(make_challenge, tmp_path, phases):
    ch = make_challenge()
    broken = write_package(tmp_path / "broken", "def predict(:\n")
    with pytest.raises(ChallengeError, match="syntax error"):
        ch.dry_run(broken, "owls")
    with pytest.raises(ChallengeError, match="nothing to run"):
        ch.dry_run(Path(phases["validation"]) / "labelsTr", "owls", fmt="predictions")
    _nothing_stored(ch)


def test_dry_run_cli_exits_non_zero_on_failure(make_challenge, tmp_path, capsys):
    from medai_lab.cli import main

    ch = make_challenge(time_per_case_s=1)
    pkg = write_package(tmp_path / "slow", SLOW)
    code = main(["challenge", "dry-run", str(ch.root), str(pkg), "--team", "owls",
                 "--max-cases", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "timeout" in out and "failed: 1 timeout" in out
    _nothing_stored(ch)

"""Bad input on evaluation day: one clear line each, and the leaderboard does not change."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from challenge_helpers import HONEST, IN_CI, spec_dict, write_package

from medai_lab.challenge import Challenge, QuotaError


def _pkg(tmp_path: Path, name: str) -> Path:
    return write_package(tmp_path / "pkgs" / name, HONEST + f"    # {name}\n")


def test_team_over_its_daily_limit_is_refused_by_the_database(make_challenge, tmp_path):
    ch = make_challenge(submissions_per_day=1)
    first = ch.submit(_pkg(tmp_path, "a"), team="owls", phase="test")
    with pytest.raises(QuotaError) as info:
        ch.submit(_pkg(tmp_path, "b"), team="owls", phase="test")
    assert "\n" not in str(info.value) and "owls" in str(info.value)
    # a client writing to the database itself meets the same cap (a trigger)
    with sqlite3.connect(ch.root / "challenge.db") as con, pytest.raises(sqlite3.IntegrityError):
        con.execute(
            "INSERT INTO submissions (sha256, team, phase, format, created_at, day, size_bytes, "
            "path) VALUES ('x', 'owls', 'test', 'python', ?, ?, 1, 'p')",
            (first["created_at"], first["created_at"][:10]),
        )
    assert [r["id"] for r in ch.submissions()] == [first["id"]]
    assert ch.leaderboard("test").empty


def test_a_sandbox_that_cannot_start_is_not_scored(make_challenge, tmp_path):
    ch = make_challenge()
    sid = ch.submit(_pkg(tmp_path, "a"), team="owls")["id"]
    not_a_folder = tmp_path / "sandbox-is-a-file"
    not_a_folder.write_text("x")
    lines: list[str] = []
    done = ch.evaluate(track=False, sandbox_dir=not_a_folder, log=lines.append)
    assert [r["status"] for r in done] == ["error"]
    assert "sandbox=not_started" in ch.store.get(sid)["notes"]
    assert any("sandbox could not start" in line and "\n" not in line for line in lines)
    assert ch.store.score(sid) is None and ch.leaderboard("validation").empty


def test_full_disk_requeues_and_stops_with_one_line(tmp_path, phases):
    """The results folder on a 4 KiB tmpfs (a private mount namespace: nothing leaks out)."""
    unshare = shutil.which("unshare")
    try:
        probe = subprocess.run([unshare or "unshare", "--mount", "true"], capture_output=True)
        ok = unshare is not None and probe.returncode == 0
    except OSError:
        ok = False
    if not ok:
        if IN_CI:
            pytest.fail("CI runs as root with util-linux unshare (mount namespaces)")
        pytest.skip("needs root and unshare --mount for a real full disk")
    ch = Challenge.create(tmp_path / "hack", spec_dict(phases))
    sid = ch.submit(_pkg(tmp_path, "a"), team="owls")["id"]
    exe = Path(sys.executable).with_name("medai-lab")
    script = 'mount -t tmpfs -o size=4k tmpfs "$1" && exec "$2" challenge evaluate "$3" --no-track'
    proc = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(ch.root / "results"), str(exe), str(ch.root)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = proc.stderr.strip().splitlines()
    assert proc.returncode != 0
    assert len(errors) == 1 and "disk full" in errors[0], proc.stderr
    row = ch.store.get(sid)
    assert row["status"] == "queued" and ch.store.score(sid) is None
    assert ch.leaderboard("validation").empty
    # with space again, the same submission is scored
    assert [r["status"] for r in ch.evaluate(track=False)] == ["scored"]


def test_hidden_feedback_is_rounded_partial_and_stable(tmp_path, phases):
    raw = spec_dict(phases)
    raw["phases"]["test"]["feedback"] = {"precision": 2, "subset": 0.5, "noise": 0.01}
    ch = Challenge.create(tmp_path / "hack", raw)
    sid = ch.submit(_pkg(tmp_path, "a"), team="owls", phase="test")["id"]
    ch.evaluate(track=False)
    full = ch.result(sid, team=None)
    shown = ch.result(sid, team="owls")
    assert "cases" in full and "cases" not in shown
    assert shown == ch.result(sid, team="owls")  # asking again gives the same noise
    score = shown["score"]
    assert score["shown_cases"] < full["score"]["n_cases"]
    for m in ("dice", "hd95", "nsd"):
        assert score[f"{m}_mean"] == round(score[f"{m}_mean"], 2)
        assert f"{m}_ci_low" not in score
    assert "per_label" not in score
    assert full["score"]["dice_mean"] != score["dice_mean"]
    board = ch.leaderboard("test", public=True)
    assert list(board["dice"]) == [score["dice_mean"]] and board["dice_ci_low"].isna().all()
    assert ch.leaderboard("test")["dice"][0] == full["score"]["dice_mean"]
    from medai_lab.challenge.leaderboard import format_table

    assert "owls" in format_table(board, ch.spec, ch.spec.phase("test"))

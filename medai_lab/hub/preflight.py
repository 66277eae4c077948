"""Start-up check of ``medai-lab hub --run-as ACCOUNT``: can that account run the servers?

The hub (root) starts every user server as ACCOUNT. When ACCOUNT cannot run the environment's
Python (it links into a folder only root may enter, such as ``/root/.pyenv``) or cannot reach
the hub's data folder, every spawn fails with a bare "500 : Unhandled error". So before the hub
starts, :func:`account_problems` runs the real thing as ACCOUNT, switched the way the spawner
switches (no supplementary groups, ACCOUNT's uid and gid): a shell that tries to enter each
folder on the way, and the environment's Python importing the single-user server. Each problem
comes back as one line that says what to change.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medai_lab.errors import MedaiError

PROBE_TIMEOUT_S = 120.0  # importing the server on a busy two-core machine


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the servers' account from running a server.

    Attributes
    ----------
    message
        What is wrong and what to change, in one line.
    blocked
        The folder the account cannot enter (empty when the problem is not a folder).
    """

    message: str
    blocked: str = ""


@dataclass(frozen=True)
class Need:
    """A path the servers' account must reach.

    Attributes
    ----------
    path
        Checked: every folder on the way must be enterable (and ``path`` readable when
        ``read``).
    what
        What it is, for the message ("the environment's Python /usr/bin/python3.11").
    kind
        ``python``, ``data`` or ``other``: which fix the message proposes. The first
        ``python`` need that is not ``read`` is the interpreter: the account must be able to
        import the single-user server with it.
    read
        Whether ``path`` itself must be readable (a folder of packages).
    """

    path: str
    what: str
    kind: str = "other"
    read: bool = False


def hub_needs(data_dir: Path, server_cmd: Sequence[str] = ()) -> list[Need]:
    """What a server of this environment needs: its Python, packages, command, the data folder.

    The data folder itself gets mode 0711 from the hub's config; the folders above it are
    checked.
    """
    python = sys.executable
    real = os.path.realpath(python)
    shown = python if real == python else f"{python} (a link to {real})"
    needs = [Need(python, f"the environment's Python {shown}", "python")]
    site = next((p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()), "")
    if site:
        needs.append(Need(site, f"the environment's packages {site}", "python", read=True))
    if server_cmd:
        exe = shutil.which(server_cmd[0]) or server_cmd[0]
        needs.append(Need(exe, f"the server command {exe}"))
    needs.append(Need(str(data_dir.parent), f"the hub's data folder {data_dir}", "data"))
    return needs


def account_problems(account: str, needs: Sequence[Need]) -> list[Problem]:
    """Everything that keeps ``account`` from running a server; empty when it can.

    Raises
    ------
    MedaiError
        When the check itself cannot run (the hub is not root and ``account`` is not its own).
    """
    try:
        pw = pwd.getpwnam(account)
    except KeyError:
        return [
            Problem(
                f"there is no Unix account {account!r}: create one for the servers "
                f"(`useradd --system --no-create-home --shell /usr/sbin/nologin {account}`)"
            )
        ]
    if pw.pw_uid == 0:
        return [
            Problem(f"--run-as {account}: servers would run as root; name an unprivileged account")
        ]
    if os.geteuid() not in (0, pw.pw_uid):
        raise MedaiError(
            f"--run-as {account} needs the hub to run as root (it switches the servers to that "
            f"account); or run the hub as {account} itself, without --run-as"
        )
    problems = [_blocked(account, f, blocked) for f, blocked in _unreachable(pw, needs).items()]
    python = next((n.path for n in needs if n.kind == "python" and not n.read), "")
    if python and not problems:
        error = _python_error(pw, python)
        if error:
            problems.append(Problem(f"{account} cannot start a server with {python}: {error}"))
    return problems


def _as(pw: pwd.struct_passwd, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the account, switched as the spawner switches (no extra groups)."""
    same = os.geteuid() == pw.pw_uid
    return subprocess.run(
        argv,
        user=None if same else pw.pw_uid,
        group=None if same else pw.pw_gid,
        extra_groups=None if same else [],
        env={"PATH": os.defpath, "HOME": "/", "LC_ALL": "C"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )


def _unreachable(pw: pwd.struct_passwd, needs: Sequence[Need]) -> dict[str, list[Need]]:
    """``{folder: needs}``: the first folder on the way to each need that the account cannot
    enter (or the need itself when it must be readable and is not), top-down."""
    checks: list[tuple[str, str, Need]] = [
        ("-x", str(d), need) for need in needs for d in _folders_to(need.path)
    ]
    checks += [("-r", need.path, need) for need in needs if need.read]
    script = "\n".join(f'test {t} "$1" || echo "$1"; shift' for t, _, _ in checks)
    done = _as(pw, ["/bin/sh", "-c", script, "sh", *(p for _, p, _ in checks)])
    denied = set(done.stdout.splitlines())
    out: dict[str, list[Need]] = {}
    for need in needs:
        first = next((p for _, p, n in checks if n is need and p in denied), None)
        if first is not None:
            out.setdefault(first, []).append(need)
    return out


def _folders_to(path: str) -> list[Path]:
    """Every folder from ``/`` down to ``path`` as written, then as resolved (symlinks), and
    ``path`` itself if it is a folder."""
    out: list[Path] = []
    for p in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
        for d in [*reversed(p.parents), *([p] if p.is_dir() else [])]:
            if d not in out:
                out.append(d)
    return out


def _blocked(account: str, folder: str, needs: list[Need]) -> Problem:
    """One problem per folder, naming everything behind it and the fixes."""
    try:
        st = os.stat(folder)
        mode = f"mode {stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)}"
    except OSError:
        mode = "unreadable"
    kinds = {n.kind for n in needs}
    # Folders on the way only need entering (x); read only where the need itself is the folder.
    readable = any(n.read and os.path.abspath(n.path) == os.path.abspath(folder) for n in needs)
    let_through = f"chmod o+{'rx' if readable else 'x'} {folder}"
    fixes = []
    if "python" in kinds:
        fixes.append(
            "make the environment from a Python every account can run, in a folder every "
            "account can read (e.g. clone to /opt/medai-lab, then `make install "
            "PYTHON=/usr/bin/python3`)"
        )
    if "data" in kinds:
        fixes.append("give --data a folder outside it (e.g. /srv/medai-hub)")
    if "other" in kinds:
        fixes.append("put it where every account can read it")
    fixes.append(f"or let {account} through: `{let_through}`")
    behind = " and ".join(n.what for n in needs)
    return Problem(
        f"{account} cannot enter {folder} ({mode}), on the way to {behind}: {'; '.join(fixes)}",
        folder,
    )


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _python_error(pw: pwd.struct_passwd, python: str) -> str:
    """Empty when the account can import the single-user server, else the last error line."""
    try:
        done = _as(pw, [python, "-c", "import jupyterhub.singleuser, medai_lab.server"])
    except OSError as exc:
        return exc.strerror or str(exc)
    except subprocess.TimeoutExpired:
        return f"importing the server took more than {PROBE_TIMEOUT_S:.0f} s"
    if done.returncode == 0:
        return ""
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"

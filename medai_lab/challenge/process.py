"""The parent's handle on one sandbox worker: start, the line protocol, timeouts, killing.

Messages from the worker are trusted for nothing: only fixed words are accepted
(:func:`parse_message`), anything else counts as a crash, and a line longer than 256 bytes
is a protocol violation. The worker's environment is built from scratch (:func:`environment`).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from medai_lab.challenge.slots import ALL_GPUS, Slot
from medai_lab.challenge.spec import Limits
from medai_lab.challenge.worker import CATEGORIES

UNSHARE_FLAGS = ("--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc")
_NOTE = re.compile(r"^[a-z_]+=[a-z_.]+$")
_POLL_S = 0.2


class WorkerProcess:
    """One worker process and its control pipe (see :mod:`medai_lab.challenge.sandbox`).

    Parameters
    ----------
    work
        The run's working folder (``config.json``, ``in/``, ``out/``, ``tmp/``).
    limits
        The challenge limits (startup and per-case time, output size, memory, CPUs).
    mode
        ``"namespaces"`` to start it under ``unshare``, else ``"none"``.
    uid
        The sandbox user id (killed by id when the worker stops), or None.
    slot
        CPUs and GPU of the sandbox (default: the first ``limits.cpus`` cores, no GPU).
    """

    def __init__(
        self, work: Path, limits: Limits, mode: str, uid: int | None, slot: Slot | None = None
    ) -> None:
        self.work, self.limits, self.mode, self.uid = work, limits, mode, uid
        self.slot = slot
        self.alive = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.buf = b""
        self.rfd = -1
        self.rusage: Any = None

    def start(self) -> tuple[str, list[str]]:
        """Start the worker and wait until it has loaded the submission.

        Returns ``("ready", notes)`` or a failure category and the notes received so far.
        """
        rfd, wfd = os.pipe()
        cmd = [sys.executable, "-I", "-B", "-m", "medai_lab.challenge.worker"]
        cmd += [str(self.work / "config.json"), str(wfd)]
        if self.mode == "namespaces":
            cmd = [shutil.which("unshare") or "unshare", *UNSHARE_FLAGS, *cmd]
        setpriv = shutil.which("setpriv")
        if setpriv:  # a killed evaluator (kill -9) takes its sandbox with it
            cmd = [setpriv, "--pdeathsig", "KILL", *cmd]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(wfd,),
                start_new_session=True,
                env=environment(self.work, self.limits, self.slot),
                cwd=self.work,
            )
        except OSError:
            os.close(rfd)
            raise
        finally:
            os.close(wfd)
        self.rfd, self.alive = rfd, True
        notes: list[str] = []
        deadline = time.monotonic() + self.limits.startup_s
        while True:
            msg = self._next(deadline)
            if msg[0] == "note" and len(notes) < 20 and _NOTE.match(msg[1]):
                notes.append(msg[1])
            elif msg[0] == "ready":
                return "ready", notes
            elif msg[0] == "fail" and msg[1] == "-1":
                self.kill()
                return msg[2], notes
            else:
                return self._failure(msg), notes

    def case(self, index: int) -> tuple[str, float | None]:
        """Ask for one case; its status and wall seconds."""
        assert self.proc is not None and self.proc.stdin is not None
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(f"{index}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            return self._failure(("died",)), None
        msg = self._next(t0 + self.limits.time_per_case_s)
        seconds = time.monotonic() - t0
        if msg[0] == "done" and msg[1] == str(index):
            return "ok", seconds
        if msg[0] == "fail" and msg[1] == str(index):
            return msg[2], seconds
        return self._failure(msg), seconds

    def _next(self, deadline: float) -> tuple[str, ...]:
        """The next valid message, or ("timeout",), ("died",), ("too_large",), ("protocol",)."""
        limit = self.limits.output_mb * 2**20
        while True:
            line, sep, rest = self.buf.partition(b"\n")
            if sep:
                self.buf = rest
                return parse_message(line)
            if len(self.buf) > 256:
                return ("protocol",)
            now = time.monotonic()
            if now >= deadline:
                return ("timeout",)
            ready, _, _ = select.select([self.rfd], [], [], min(_POLL_S, deadline - now))
            if ready:
                chunk = os.read(self.rfd, 4096)
                if not chunk:
                    return ("died",)
                self.buf += chunk
            elif tree_size(self.work / "out") + tree_size(self.work / "tmp") > limit:
                return ("too_large",)

    def _failure(self, msg: tuple[str, ...]) -> str:
        """Kill the worker and name what went wrong."""
        self.kill()
        kind = msg[0]
        if kind == "timeout":
            return "timeout"
        if kind == "too_large":
            return "output_too_large"
        if kind == "died" and self.rusage is not None:
            mem = self.rusage.ru_maxrss * 1024
            cpu = self.rusage.ru_utime + self.rusage.ru_stime
            if mem >= 0.9 * self.limits.memory_mb * 2**20:
                return "oom"
            if cpu >= self.limits.cpus * self.limits.time_per_case_s:
                return "timeout"
        return "crash"

    def kill(self) -> None:
        """SIGKILL the worker's process group (and, in a PID namespace, all it started)."""
        if self.proc is None or not self.alive:
            return
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """Close stdin so an idle worker exits, then make sure nothing of it is left."""
        if self.proc is not None and self.alive:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            deadline = time.monotonic() + 5.0
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.kill()
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1
        if self.uid is not None:
            kill_uid(self.uid)

    def _exited(self) -> bool:
        """Reap the worker if it has exited, keeping its resource usage (peak memory)."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return True
        try:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        except ChildProcessError:
            return self.proc.poll() is not None
        if pid == 0:
            return False
        self.proc.returncode, self.rusage = os.waitstatus_to_exitcode(status), usage
        return True

    @property
    def peak_memory_mb(self) -> float | None:
        """Largest resident set of the worker (and what it waited for), once it has ended."""
        return None if self.rusage is None else self.rusage.ru_maxrss / 1024

    def _reap(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            try:
                _, status, self.rusage = os.wait4(self.proc.pid, 0)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.proc.wait()
        # a process that left the group (setsid) outside a PID namespace
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def parse_message(line: bytes) -> tuple[str, ...]:
    try:
        words = tuple(line.decode("ascii").split())
    except UnicodeDecodeError:
        return ("protocol",)
    if words == ("ready",):
        return words
    if len(words) == 2 and words[0] in ("note", "done"):
        return words
    if len(words) == 3 and words[0] == "fail" and words[2] in CATEGORIES:
        return words
    return ("protocol",)


def environment(work: Path, limits: Limits, slot: Slot | None = None) -> dict[str, str]:
    """A clean environment: no tokens, tracking URIs or user settings reach the worker."""
    if slot is None:
        slot = Slot("cpu0", tuple(range(limits.cpus)), ALL_GPUS if limits.gpu else "")
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work / "tmp"),
        "TMPDIR": str(work / "tmp"),
        "LANG": "C.UTF-8",
        "USER": "sandbox",  # the sandbox user id has no passwd entry (getpass.getuser)
        "LOGNAME": "sandbox",
        "MPLCONFIGDIR": str(work / "tmp"),
        **slot.environment(),
    }


def tree_size(folder: Path, max_entries: int = 10_000) -> int:
    """Bytes in a folder tree; a tree with too many entries counts as unlimited."""
    total, seen = 0, 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > max_entries:
                return 2**62
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def pid_alive(pid: int) -> bool:
    """A process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def owner(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def kill_uid(uid: int, rounds: int = 20) -> int:
    """SIGKILL every process running as ``uid`` (a bounded number of sweeps); how many."""
    killed = 0
    for _ in range(rounds):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and owner(p) == uid]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return killed

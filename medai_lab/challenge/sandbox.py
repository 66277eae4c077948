"""Run a submission over cases in a confined worker process, with a wall-clock limit per case.

The parent side of :mod:`medai_lab.challenge.worker`. One worker starts per submission (torch
and MONAI are imported once) and handles every case; when a case times out, crashes the
process or breaks the protocol, the whole process tree is killed and a fresh worker takes the
remaining cases (at most :data:`MAX_STARTS` workers per submission). What comes back per case
is a category, never text: stdout and stderr of the worker go to /dev/null.

Isolation, chosen once per process (:func:`isolation`):

- root with ``unshare`` (util-linux): new network, mount and PID namespaces; the worker
  confines itself further (:mod:`medai_lab.challenge.jail`) and runs as an unused user id;
  killing the ``unshare`` process kills everything in the PID namespace.
- otherwise: a new session with resource limits, and an unprivileged network namespace where
  the kernel allows it. The notes recorded with each submission say which applied.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.process import (
    UNSHARE_FLAGS,
    WorkerProcess,
    owner,
    pid_alive,
    tree_size,
)
from medai_lab.challenge.slots import Slot
from medai_lab.challenge.spec import Limits

MAX_STARTS = 3
PREFIX = "medai-sbx-"  # + <pid namespace>.<evaluator pid>-: what a killed evaluator left
_UID_RANGE = (1_500_000_000, 1_600_000_000)


@dataclass
class SandboxRun:
    """Per-case outcome (index -> (status, seconds)), the worker's output folder, notes."""

    outcomes: dict[int, tuple[str, float | None]]
    out_dir: Path
    notes: list[str] = field(default_factory=list)
    starts: int = 0
    peak_memory_mb: float | None = None


@functools.lru_cache(maxsize=1)
def isolation() -> str:
    """``"namespaces"`` (root + working ``unshare``) or ``"none"``."""
    exe = shutil.which("unshare")
    if sys.platform != "linux" or os.geteuid() != 0 or exe is None:
        return "none"
    try:
        probe = subprocess.run(
            [exe, *UNSHARE_FLAGS, "true"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return "namespaces" if probe.returncode == 0 else "none"


class Sandbox:
    """Runs one submission's worker(s) under ``limits`` (see module docstring).

    Parameters
    ----------
    limits
        Time, memory, CPU, output and process limits of the challenge.
    hide
        Folders the worker must not see (labels, images, the challenge folder).
    base
        Where per-run working folders are made (default ``$MEDAI_SANDBOX_DIR`` or the temp
        folder); it must be reachable by an unprivileged user.
    slot
        The CPUs (and GPU unit) this sandbox runs on (:mod:`medai_lab.challenge.slots`).
    """

    def __init__(
        self,
        limits: Limits,
        hide: list[Path],
        base: str | os.PathLike[str] | None = None,
        slot: Slot | None = None,
    ):
        self.limits = limits
        self.slot = slot
        self.hide = [Path(p).resolve() for p in hide]
        self.base = Path(base or os.environ.get("MEDAI_SANDBOX_DIR") or tempfile.gettempdir())
        self.base = self.base.resolve()
        for folder in self.hide:
            if self.base == folder or folder in self.base.parents:
                raise ChallengeError(
                    f"the sandbox folder {self.base} is inside {folder}, which the sandbox must "
                    "not see: set MEDAI_SANDBOX_DIR elsewhere"
                )
        self.mode = isolation()
        self.uid = _free_uid() if self.mode == "namespaces" else None

    # --- set-up ---------------------------------------------------------------------------

    def prepare(self, fmt: str, submission: Path, entry: str, images: list[Path]) -> Path:
        """A private working folder: ``in/`` (image copies), ``sub/``, ``out/``, ``tmp/``."""
        self.base.mkdir(parents=True, exist_ok=True)
        owner_tag = f"{PREFIX}{_pid_namespace()}.{os.getpid()}-"
        work = Path(tempfile.mkdtemp(prefix=owner_tag, dir=self.base))
        os.chmod(work, 0o711)
        (work / "in").mkdir(mode=0o755)
        names = []
        for i, image in enumerate(images):
            name = f"{i:04d}" + (".nii.gz" if image.name.endswith(".gz") else ".nii")
            shutil.copyfile(image, work / "in" / name)
            os.chmod(work / "in" / name, 0o644)
            names.append(name)
        target = work / "sub" / ("package" if fmt == "python" else "")
        shutil.copytree(submission, target, dirs_exist_ok=True)
        for dirpath, _, files in os.walk(work / "sub"):
            os.chmod(dirpath, 0o755)
            for f in files:
                os.chmod(Path(dirpath, f), 0o644)
        (work / "accepted").mkdir(mode=0o700)  # root's (when the sandbox user is another)
        for sub in ("out", "tmp"):
            (work / sub).mkdir(mode=0o700)
            if self.uid is not None:
                os.chown(work / sub, self.uid, self.uid)
        cpu_s = self.limits.cpus * (
            self.limits.startup_s + len(images) * self.limits.time_per_case_s
        )
        cfg = {
            "workdir": str(work),
            "format": fmt,
            "entry": entry,
            "inputs": names,
            "uid": self.uid,
            "namespaces": self.mode == "namespaces",
            "hide": [str(p) for p in self.hide],
            "cpus": self.limits.cpus,
            "cpu_set": list(self.slot.cpus) if self.slot else None,
            "gpu": self.limits.gpu,
            "gpu_memory_fraction": self.slot.memory_fraction if self.slot else None,
            "memory_mb": self.limits.memory_mb,
            "output_mb": self.limits.output_mb,
            "processes": self.limits.processes,
            "cpu_seconds": int(cpu_s) + 10,
            "max_label": 255,
        }
        (work / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
        os.chmod(work / "config.json", 0o644)
        return work

    # --- running --------------------------------------------------------------------------

    def run(self, fmt: str, submission: Path, entry: str, images: list[Path]) -> SandboxRun:
        """Run every image through the submission.

        Outputs of finished cases are in ``result.out_dir`` (``<index:04d>.nii.gz``); the caller
        removes ``result.out_dir.parent`` when done with them.
        """
        work = self.prepare(fmt, submission, entry, images)
        result = SandboxRun({}, work / "accepted", notes=[f"isolation={self.mode}"])
        if self.slot is not None:
            result.notes += list(self.slot.notes)
            if self.slot.gpu_kind:
                result.notes.append(f"gpu={self.slot.gpu_kind}")
        remaining = list(range(len(images)))
        while remaining and result.starts < MAX_STARTS:
            result.starts += 1
            worker = WorkerProcess(work, self.limits, self.mode, self.uid, self.slot)
            try:
                status, notes = worker.start()
                result.notes += [n for n in notes if n not in result.notes]
                if status != "ready":  # loading failed: the same would happen again
                    for i in remaining:
                        result.outcomes[i] = (status, None)
                    remaining = []
                    break
                while remaining:
                    i = remaining.pop(0)
                    status, seconds = worker.case(i)
                    if status == "ok":
                        status = self._stage(work, i)
                        if status != "ok":
                            worker.kill()
                    result.outcomes[i] = (status, seconds)
                    if not worker.alive:
                        _empty(work / "out")
                        _empty(work / "tmp")
                        break
            finally:
                worker.stop()
                peak = worker.peak_memory_mb
                if peak is not None:
                    result.peak_memory_mb = max(peak, result.peak_memory_mb or 0.0)
        for i in remaining:
            result.outcomes[i] = ("not_run", None)
        return result

    def _stage(self, work: Path, index: int) -> str:
        """Move a finished case's output where the sandbox cannot reach; check the size."""
        name = f"{index:04d}.nii.gz"
        try:
            os.rename(work / "out" / name, work / "accepted" / name)
        except OSError:
            return "invalid_output"
        limit = self.limits.output_mb * 2**20
        if tree_size(work / "out") + tree_size(work / "tmp") > limit:
            return "output_too_large"
        return "ok"


def sweep_orphans(base: str | os.PathLike[str] | None = None) -> int:
    """Remove working folders of evaluators that are gone (killed); how many.

    Only folders made in this PID namespace are judged: a process id means nothing in
    another one (a container, another evaluator's namespace), so those are left alone.
    """
    folder = Path(base or os.environ.get("MEDAI_SANDBOX_DIR") or tempfile.gettempdir())
    ns, removed = _pid_namespace(), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        tag, _, pid = entry.name.removeprefix(PREFIX).partition("-")[0].partition(".")
        if not entry.name.startswith(PREFIX) or tag != ns or not pid.isdigit():
            continue
        if not pid_alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _pid_namespace() -> str:
    """This process's PID namespace (inode of ``/proc/self/ns/pid``), or ``0``."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _empty(folder: Path) -> None:
    """Remove everything inside ``folder`` (what a killed worker left)."""
    for entry in list(os.scandir(folder)):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _free_uid() -> int:
    """A user id no process uses (random in a high range, so parallel runs do not share it)."""
    used = {owner(p) for p in os.listdir("/proc") if p.isdigit()}
    for _ in range(100):
        uid = random.randrange(*_UID_RANGE)
        if uid not in used:
            return uid
    raise RuntimeError("no free sandbox user id")

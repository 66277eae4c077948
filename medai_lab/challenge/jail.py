"""Confine the sandbox process itself, before any submitted code is loaded (Linux).

Run by :mod:`medai_lab.challenge.worker` as its first step. When the parent started it as root
inside new network, mount and PID namespaces (``unshare --net --mount --pid --fork``), it:

1. replaces the temp folders (``/tmp``, ``/var/tmp``, ``/dev/shm``) with small private tmpfs,
   the challenge folder and every image/label folder with empty, unreadable tmpfs, and the
   folders on the way to the Python environment that an unprivileged user cannot traverse
   (``/root`` for a pyenv Python) with tmpfs holding only bind mounts of what is needed;
2. sets resource limits (CPU time, address space, file size, processes, no core files);
3. switches to an unprivileged user id of its own (all groups dropped, no new privileges),
   so RLIMIT_NPROC binds and root-only files stay closed.

Without root it asks for an unprivileged user + network namespace, and otherwise runs with
resource limits only; every shortfall comes back as a note the challenge records.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import socket
import stat
import sys
from pathlib import Path
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS = 38
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
MiB = 2**20


def confine(cfg: dict[str, Any]) -> list[str]:
    """Apply the confinement described by ``cfg`` (see module docstring); return notes."""
    notes: list[str] = []
    root = os.geteuid() == 0
    uid = cfg.get("uid")
    own_uid = root and uid is not None
    running = 0 if own_uid else _tasks_of(os.getuid())  # before a user namespace hides our id
    workdir = Path(cfg["workdir"])
    if cfg.get("namespaces") and root:
        needed = [workdir, *interpreter_paths()] if uid is not None else [workdir]
        out_bytes = int(cfg["output_mb"] * MiB)
        for folder in TEMP_DIRS:
            if os.path.isdir(folder):
                _cover(Path(folder), needed, f"mode=1777,size={out_bytes}")
        if uid is not None:
            for blocked in _blocked_ancestors(needed):
                _cover(blocked, needed, "mode=0755,size=64k")
        for folder in cfg.get("hide", []):
            _hide(Path(folder), needed)
        notes.append("fs=private")
    elif not root:
        notes.append(_user_netns())
    _affinity(int(cfg["cpus"]), cfg.get("cpu_set"))
    notes += _rlimits(cfg, running)
    if own_uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        notes.append("user=unprivileged")
    elif root:
        notes.append("user=root")
    _no_new_privs()
    notes.append("net=isolated" if network_is_isolated() else "net=open")
    return notes


def interpreter_paths() -> list[Path]:
    """Folders the running Python needs to import from (prefixes, executable, sys.path)."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    paths |= {Path(p) for p in sys.path if p and os.path.isdir(p)}
    return sorted(paths)


def network_is_isolated() -> bool:
    """True when even loopback is unreachable (a fresh network namespace: ``lo`` down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", 9))
        except OSError as exc:
            return exc.errno in (errno.ENETUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL)
    return False


# --- file system ------------------------------------------------------------------------------


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    if _libc().mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _cover(folder: Path, needed: list[Path], options: str) -> None:
    """Put an empty tmpfs over ``folder``, binding back the children leading to ``needed``."""
    keep: dict[str, int] = {}
    for path in needed:
        try:
            rel = path.relative_to(folder)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] not in keep:
            keep[rel.parts[0]] = os.open(folder / rel.parts[0], os.O_PATH | os.O_CLOEXEC)
    try:
        _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, options)
        for name, fd in keep.items():
            target = folder / name
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                target.mkdir()
            else:
                target.touch()
            _mount(f"/proc/self/fd/{fd}", str(target), None, MS_BIND | MS_REC, None)
    finally:
        for fd in keep.values():
            os.close(fd)


def _hide(folder: Path, needed: list[Path]) -> None:
    """Replace ``folder`` by an empty, read-only tmpfs nobody can open (mode 000)."""
    if any(n == folder or folder in n.parents for n in needed):
        return  # never hide the sandbox's own folders (the caller keeps them apart)
    try:
        _mount("tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000,size=4k")
        _mount("tmpfs", str(folder), "tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone already: under a cover
            raise


def _blocked_ancestors(needed: list[Path]) -> list[Path]:
    """Folders on the way to ``needed`` that others cannot traverse, outermost first."""
    blocked = set()
    for path in needed:
        for folder in [*reversed(path.parents), path]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                break
            if folder != path and not mode & stat.S_IXOTH:
                blocked.add(folder)
    return sorted(blocked, key=lambda p: len(p.parts))


# --- limits and identity ----------------------------------------------------------------------


def _rlimits(cfg: dict[str, Any], running: int) -> list[str]:
    """Set the limits; ``running``: tasks the user already has (0 for a user id of our own)."""
    notes = []
    cpu = int(cfg["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    if not cfg.get("gpu"):
        mem = int(cfg["memory_mb"] * MiB)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    else:
        notes.append("memory=unlimited_gpu")  # CUDA reserves far more address space than it uses
    out = int(cfg["output_mb"] * MiB)
    resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    procs = int(cfg["processes"])
    if running:
        # shared with this user's other processes: allow for what already runs
        procs += running
        notes.append("nproc=shared")
    resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
    return notes


def _tasks_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def _affinity(cpus: int, cpu_set: list[int] | None = None) -> None:
    """Pin to the slot's cores (the parent's pool keeps parallel sandboxes apart)."""
    if hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        chosen = [c for c in cpu_set or () if c in allowed] or allowed[: max(1, cpus)]
        os.sched_setaffinity(0, chosen)


def _no_new_privs() -> None:
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _user_netns() -> str:
    """Unprivileged: a user + network namespace (no uid map: file access stays ours)."""
    try:
        if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            return "netns=user"
    except (OSError, AttributeError):
        pass
    return "netns=unavailable"

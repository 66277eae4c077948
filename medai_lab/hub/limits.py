"""Enforce a server's CPU/memory share with the kernel: cgroup v2 or v1 folders, CPU affinity.

Backends (``medai-lab hub --limits``; ``auto`` picks the first that works here):

``cgroup2``
    A delegated cgroup v2 subtree (under systemd: a unit with ``Delegate=yes``, which
    systemd marks with a ``trusted.delegate`` attribute; elsewhere the hub runs as root):
    ``medai-servers/<server>/`` with ``cpu.max`` and ``memory.max``
    (``memory.swap.max`` 0). The hub moves itself into a ``medai-hub`` leaf first, since v2
    lets only leaf cgroups hold processes once controllers are enabled.
``cgroup1``
    Legacy or hybrid hierarchies (writable as root): ``cpu.cfs_quota_us`` and
    ``memory.limit_in_bytes`` under the hub's own cgroup of each controller.
``affinity``
    No cgroup access (an unprivileged hub): each server is pinned to its own cores, thread
    variables follow the share; memory is only a hint (``MEDAI_MEMORY_LIMIT``), not enforced.
``none``
    Thread variables only (cooperative).

Each server process joins its cgroup in the spawner's ``preexec_fn`` (before it drops
privileges and before it can start a kernel), so every kernel it starts is inside the limit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.cpushare import CGROUP_ROOT, own_cgroups
from medai_lab.hub.resources import ResourceError, Share

BACKENDS = ("auto", "cgroup2", "cgroup1", "affinity", "none")
PERIOD_US = 100_000
PARENT = "medai-servers"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_busy_cores: dict[str, tuple[int, ...]] = {}  # server key -> pinned cores (this hub process)


@dataclass
class Placement:
    """Where one server runs: its cgroup folders (one per v1 controller) and its cores."""

    key: str
    backend: str
    folders: list[str] = field(default_factory=list)
    cores: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "backend": self.backend, "folders": self.folders,
                "cores": list(self.cores)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Placement:
        folders, cores = list(d.get("folders", [])), list(d.get("cores", []))
        return cls(str(d["key"]), str(d["backend"]), [str(f) for f in folders],
                   tuple(int(c) for c in cores))  # fmt: skip


def server_key(user: str, server: str) -> str:
    """A cgroup folder name for a hub user's server (no slashes, no odd characters)."""
    return _SAFE.sub("_", f"{user}--{server}" if server else user)[:100]


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _v2_base(root: Path) -> Path | None:
    """The hub's own v2 cgroup when cpu and memory can be delegated to children, else None."""
    if not (root / "cgroup.controllers").exists():
        return None  # v1 or hybrid (no controllers on the unified mount): not usable here
    base = root / own_cgroups().get("", "/").lstrip("/")
    controllers = (base / "cgroup.controllers").read_text().split() if base.exists() else []
    if not {"cpu", "memory"} <= set(controllers) or not os.access(base, os.W_OK):
        return None
    if Path("/run/systemd/system").is_dir() and base != root and not _delegated(base):
        return None  # systemd owns this tree: only a unit with Delegate=yes may write below it
    return base


def _delegated(folder: Path) -> bool:
    """systemd marks a cgroup it delegated (``Delegate=yes``) with an extended attribute."""
    for name in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(folder, name) == b"1":
                return True
    return False


def _v2_prepare(base: Path) -> Path:
    """``base/medai-servers`` with cpu + memory enabled for its children."""
    parent = base / PARENT
    try:
        _write(base / "cgroup.subtree_control", "+cpu +memory")
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        leaf = base / "medai-hub"  # no internal processes: move the hub (and its threads) down
        leaf.mkdir(exist_ok=True)
        for pid in (base / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, OSError):
                _write(leaf / "cgroup.procs", pid)
        _write(base / "cgroup.subtree_control", "+cpu +memory")
    parent.mkdir(exist_ok=True)
    _write(parent / "cgroup.subtree_control", "+cpu +memory")
    return parent


def _v1_bases(root: Path) -> dict[str, Path] | None:
    groups, out = own_cgroups(), {}
    for controller in ("cpu", "memory"):
        names = (controller, f"{controller},cpuacct", f"cpuacct,{controller}")
        mount = next((root / n for n in names if (root / n / "cgroup.procs").exists()), None)
        if mount is None or controller not in groups:
            return None
        base = mount / groups[controller].lstrip("/")
        if not os.access(base, os.W_OK):
            return None
        out[controller] = base
    return out


def detect(wanted: str = "auto", root: str = CGROUP_ROOT) -> str:
    """The backend: ``wanted`` if it works here (else :class:`ResourceError`), or the best."""
    if wanted not in BACKENDS:
        raise ResourceError(f"--limits must be one of {', '.join(BACKENDS)}, not {wanted!r}")
    if wanted in ("affinity", "none"):
        return wanted
    base = Path(root)
    usable = {"cgroup2": _v2_base(base) is not None, "cgroup1": _v1_bases(base) is not None}
    if wanted != "auto":
        if not usable[wanted]:
            raise ResourceError(
                f"--limits {wanted}: no writable {wanted} cpu+memory hierarchy here (run the hub "
                "as root, or as a systemd unit with Delegate=yes); --limits affinity works "
                "without one"
            )
        return wanted
    return next((b for b in ("cgroup2", "cgroup1") if usable[b]), "affinity")


def pick_cores(key: str, n: int, allowed: Sequence[int] | None = None) -> tuple[int, ...]:
    """``n`` cores for server ``key``: the least used by this hub's other servers."""
    allowed = sorted(allowed if allowed is not None else os.sched_getaffinity(0))
    if n <= 0 or n >= len(allowed):
        return ()
    load = dict.fromkeys(allowed, 0)
    for other, cores in _busy_cores.items():
        for c in cores if other != key else ():
            if c in load:
                load[c] += 1
    chosen = tuple(sorted(sorted(allowed, key=lambda c: (load[c], c))[:n]))
    _busy_cores[key] = chosen
    return chosen


def claim_cores(placement: Placement) -> None:
    """Count a running server's cores again (a restarted hub loading its state)."""
    if placement.cores:
        _busy_cores[placement.key] = placement.cores


def place(
    key: str, share: Share, backend: str, pin: bool = True, root: str = CGROUP_ROOT
) -> Placement:
    """Create the server's cgroup(s) with the share's limits and choose its cores.

    On failure nothing is left behind (folders removed, cores freed) and the error is raised.
    """
    placement = Placement(key, backend)
    if pin and share.cpus and backend != "none":
        placement.cores = pick_cores(key, share.threads)
    try:
        if backend == "cgroup2":
            _place_v2(placement, share, Path(root))
        elif backend == "cgroup1":
            _place_v1(placement, share, Path(root))
    except BaseException:
        release(placement)
        raise
    return placement


def _place_v2(placement: Placement, share: Share, root: Path) -> None:
    base = _v2_base(root)
    if base is None:
        raise ResourceError("the cgroup v2 hierarchy is no longer writable")
    folder = _v2_prepare(base) / placement.key
    folder.mkdir(exist_ok=True)
    placement.folders = [str(folder)]
    cpu = f"{int(share.cpus * PERIOD_US)} {PERIOD_US}" if share.cpus else f"max {PERIOD_US}"
    _write(folder / "cpu.max", cpu)
    _write(folder / "memory.max", str(share.memory) if share.memory else "max")
    if share.memory and (folder / "memory.swap.max").exists():
        _write(folder / "memory.swap.max", "0")  # the share is RAM, not RAM + swap


def _place_v1(placement: Placement, share: Share, root: Path) -> None:
    bases = _v1_bases(root)
    if bases is None:
        raise ResourceError("the cgroup v1 hierarchy is no longer writable")
    cpu_dir = bases["cpu"] / PARENT / placement.key
    mem_dir = bases["memory"] / PARENT / placement.key
    for d in (cpu_dir, mem_dir):
        d.mkdir(parents=True, exist_ok=True)
        placement.folders.append(str(d))
    _write(cpu_dir / "cpu.cfs_period_us", str(PERIOD_US))
    _write(cpu_dir / "cpu.cfs_quota_us", str(int(share.cpus * PERIOD_US)) if share.cpus else "-1")
    _write(mem_dir / "memory.limit_in_bytes", str(share.memory) if share.memory else "-1")
    if share.memory and (mem_dir / "memory.memsw.limit_in_bytes").exists():
        with contextlib.suppress(OSError):  # RAM + swap at the share too, where accounted
            _write(mem_dir / "memory.memsw.limit_in_bytes", str(share.memory))


def child_setup(placement: Placement) -> Callable[[], None]:
    """A ``preexec_fn`` part: join the cgroup(s) and pin to the cores (runs in the child)."""
    procs = [os.path.join(f, "cgroup.procs") for f in placement.folders]
    cores = set(placement.cores)

    def setup() -> None:
        pid = str(os.getpid())
        for path in procs:
            with open(path, "w") as fh:
                fh.write(pid)
        if cores:
            os.sched_setaffinity(0, cores)

    return setup


def oom_kills(placement: Placement) -> int:
    """Processes of this server the OOM killer stopped (0 where it cannot be read)."""
    for folder in placement.folders:
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError):
                for line in (Path(folder) / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
    return 0


def release(placement: Placement, timeout: float = 5.0) -> None:
    """Stop what is left in the server's cgroup(s) and remove them; free its cores."""
    _busy_cores.pop(placement.key, None)
    end = time.monotonic() + timeout
    for folder in map(Path, placement.folders):
        while folder.exists():
            try:
                folder.rmdir()
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > end:
                    break
                for pid in (folder / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)  # leftovers of a stopped server
                time.sleep(0.05)

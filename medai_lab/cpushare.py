"""How many CPUs (and how much memory) this process really has, and libraries told to use only that.

On a shared hub a server may use a share of the machine: a CPU affinity mask, a cgroup CPU
quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``) and a memory limit. ``os.cpu_count()`` sees
none of them, so PyTorch, OpenMP, MKL/OpenBLAS, numexpr and onnxruntime start one thread per
core of the whole machine and the threads of many users fight for the same cores. This module
is the one place that answers "how many CPUs do I have":

>>> from medai_lab import cpushare
>>> cpushare.cpu_count()          # MEDAI_CPUS, else min(affinity, ceil(cgroup quota))
>>> cpushare.apply_thread_limits()  # OMP/MKL/OpenBLAS/numexpr variables, torch threads

Nothing heavy is imported: torch is touched only when it is already imported (or when asked),
otherwise its threads are set right after its first import.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import math
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_CPUS = "MEDAI_CPUS"
#: Set by the hub next to the cgroup limit (so a kernel can name the share it was given).
ENV_MEMORY = "MEDAI_MEMORY_LIMIT"
#: Thread-count variables of the native libraries, read when each library starts.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a huge page-aligned number
_applied: dict[str, int] = {}


# -- what the kernel grants this process ---------------------------------------------------------
def affinity_count() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is no mask)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def own_cgroups(proc: str = "/proc/self/cgroup") -> dict[str, str]:
    """``{controller: path}`` from ``/proc/self/cgroup``; the v2 (unified) path under ``""``."""
    out: dict[str, str] = {}
    try:
        text = Path(proc).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller.removeprefix("name=")] = parts[2]
    return out


def _ancestors(root: Path, path: str) -> list[Path]:
    """``root/path`` and every folder above it up to ``root`` (limits nest: the lowest wins)."""
    here = root / path.lstrip("/")
    out = [here, *here.parents]
    return [p for p in out if p == root or root in p.parents]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v1_dir(root: Path, controller: str) -> Path | None:
    for name in (controller, f"{controller},cpuacct", f"cpuacct,{controller}"):
        if (root / name).is_dir():
            return root / name
    return None


def cgroup_cpu_quota(root: str = CGROUP_ROOT, proc: str = "/proc/self/cgroup") -> float | None:
    """CPUs the cgroup quota allows (``1.5`` = 150 ms per 100 ms), None without a quota."""
    base, groups, limits = Path(root), own_cgroups(proc), []
    if "" in groups:
        for unified in (base, base / "unified"):
            for folder in _ancestors(unified, groups[""]):
                quota, _, period = (_read(folder / "cpu.max") or "max").partition(" ")
                if quota != "max" and period:
                    limits.append(int(quota) / int(period))
    v1 = _v1_dir(base, "cpu")
    if "cpu" in groups and v1 is not None:
        for folder in _ancestors(v1, groups["cpu"]):
            quota_text = _read(folder / "cpu.cfs_quota_us")
            period_text = _read(folder / "cpu.cfs_period_us")
            if quota_text and period_text and int(quota_text) > 0:
                limits.append(int(quota_text) / int(period_text))
    return min(limits) if limits else None


def cgroup_memory_limit(root: str = CGROUP_ROOT, proc: str = "/proc/self/cgroup") -> int | None:
    """Bytes the memory cgroup allows (v2 ``memory.max``, v1 ``memory.limit_in_bytes``)."""
    base, groups, limits = Path(root), own_cgroups(proc), []
    if "" in groups:
        for unified in (base, base / "unified"):
            for folder in _ancestors(unified, groups[""]):
                value = _read(folder / "memory.max")
                if value and value != "max":
                    limits.append(int(value))
    if "memory" in groups and (base / "memory").is_dir():
        for folder in _ancestors(base / "memory", groups["memory"]):
            value = _read(folder / "memory.limit_in_bytes")
            if value and int(value) < _UNLIMITED:
                limits.append(int(value))
    return min(limits) if limits else None


def oom_kills(root: str = CGROUP_ROOT, proc: str = "/proc/self/cgroup") -> int | None:
    """Processes the kernel's OOM killer stopped in this cgroup so far (None: not readable)."""
    base, groups = Path(root), own_cgroups(proc)
    candidates = []
    if "" in groups:
        for unified in (base, base / "unified"):
            candidates.append(unified / groups[""].lstrip("/") / "memory.events")
    if "memory" in groups:
        candidates.append(base / "memory" / groups["memory"].lstrip("/") / "memory.oom_control")
    for path in candidates:
        for line in (_read(path) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


# -- the share -----------------------------------------------------------------------------------
def cpu_share() -> float:
    """CPUs this process may use: the smaller of its affinity mask and its cgroup quota."""
    quota = cgroup_cpu_quota()
    cpus = float(affinity_count())
    return min(cpus, quota) if quota else cpus


def cpu_count(env: Mapping[str, str] | None = None) -> int:
    """Threads worth running: ``MEDAI_CPUS`` when set, else ``ceil`` of :func:`cpu_share`.

    Rounded up as Go and the JVM do for a quota (1.5 CPUs: 2 threads, throttled now and then,
    rather than 1 thread and half a core idle).
    """
    raw = (env if env is not None else os.environ).get(ENV_CPUS, "").strip()
    try:
        wanted = float(raw) if raw else 0.0
    except ValueError:
        wanted = 0.0
    share = wanted if wanted > 0 else cpu_share()
    return max(1, math.ceil(share - 1e-9))


def memory_limit(env: Mapping[str, str] | None = None) -> int | None:
    """The memory share in bytes: the cgroup limit, else ``MEDAI_MEMORY_LIMIT`` (cooperative)."""
    limit = cgroup_memory_limit()
    if limit:
        return limit
    raw = (env if env is not None else os.environ).get(ENV_MEMORY, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def thread_env(n: int) -> dict[str, str]:
    """The thread-count variables for ``n`` threads, plus ``MEDAI_CPUS``."""
    return {**dict.fromkeys(THREAD_VARS, str(n)), ENV_CPUS: str(n)}


def dataloader_workers(requested: int | None = None) -> int:
    """DataLoader worker processes that fit the share: one CPU stays with the training loop.

    ``requested`` (a config's ``num_workers``) is an upper bound; on a one-CPU share the
    answer is 0 (load in the main process), since extra processes only steal its time.
    """
    room = max(0, cpu_count() - 1)
    return room if requested is None else max(0, min(int(requested), room))


def onnx_session_options(options: Any = None) -> Any:
    """onnxruntime ``SessionOptions`` with intra-op threads at the share (inter-op: 1)."""
    if options is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = cpu_count()
    options.inter_op_num_threads = 1
    return options


# -- telling the libraries -----------------------------------------------------------------------
def set_torch_threads(torch: Any, n: int) -> None:
    """``torch.set_num_threads(n)``; interop threads too while torch still allows it."""
    torch.set_num_threads(n)
    # Only allowed before the first inter-op parallel work; later calls raise RuntimeError.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(max(1, min(n, 2)))
    _applied["torch"] = n


_after: dict[str, dict[str, Callable[[ModuleType], None]]] = {}


def after_import(name: str, key: str, then: Callable[[ModuleType], None]) -> None:
    """Run ``then(module)`` now if ``name`` is imported, else right after its first import.

    One hook per module serves every caller (thread limits here, the GPU memory cap in
    ``hub.memory``): two import hooks for one module would shadow each other. ``key`` names
    the caller; registering the same key again replaces its callback.
    """
    if name in sys.modules:
        then(sys.modules[name])
        return
    _after.setdefault(name, {})[key] = then
    if not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name))


def pending_after_import(name: str) -> tuple[str, ...]:
    """Keys of the callbacks waiting for ``name`` to be imported."""
    return tuple(_after.get(name, {}))


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``name`` through the normal finders, then runs its waiting callbacks (one shot)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._inner: importlib.abc.Loader | None = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        self._inner, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        assert self._inner is not None
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        assert self._inner is not None
        self._inner.exec_module(module)
        for then in _after.pop(self.name, {}).values():
            then(module)


def apply_thread_limits(
    n: int | None = None,
    *,
    torch: bool | None = None,
    override: bool = False,
    environ: MutableMapping[str, str] | None = None,
) -> int:
    """Make this process's libraries use ``n`` threads (default :func:`cpu_count`).

    Parameters
    ----------
    n
        Threads; default the share of this process.
    torch
        ``True``: import torch now and set its threads; ``None``: set them now if torch is
        imported, else right after its first import; ``False``: leave torch alone.
    override
        Replace thread variables already set (default: a user's own ``OMP_NUM_THREADS`` wins).
    environ
        The environment to update (default ``os.environ``; child processes inherit it).

    Returns
    -------
    int
        The thread count applied.
    """
    env = os.environ if environ is None else environ
    n = n or cpu_count(env)
    for key, value in thread_env(n).items():
        if override or not env.get(key):
            env[key] = value
    threads = int(env.get("OMP_NUM_THREADS", n)) if env.get("OMP_NUM_THREADS", "").isdigit() else n
    if "numpy" in sys.modules:  # BLAS pools already started with every core: shrink them
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except ImportError:
            pass
    if torch is True:
        import torch as torch_module

        set_torch_threads(torch_module, threads)
    elif torch is None:
        after_import("torch", "threads", lambda m: set_torch_threads(m, threads))
    return threads


def summary() -> dict[str, Any]:
    """The share as doctor and ``%medai doctor`` show it (no imports, reads /proc and cgroups)."""
    quota, limit = cgroup_cpu_quota(), cgroup_memory_limit()
    return {
        "machine_cpus": os.cpu_count() or 1,
        "affinity": affinity_count(),
        "cpu_quota": quota,
        "threads": cpu_count(),
        "env_cpus": os.environ.get(ENV_CPUS, ""),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "memory_limit": limit,
        "memory_hint": None if limit else memory_limit(),
        "oom_kills": oom_kills(),
    }


def oom_message(kills: int, limit: int | None) -> str:
    """One line for a kernel that learns an earlier process of its server was OOM-killed."""
    share = f"this server's memory share ({limit / 1024**3:.1f} GiB)" if limit else "memory"
    return (
        f"{kills} process(es) of this server were stopped by the out-of-memory killer: "
        f"{share} was the limit, not a bug in your code. Use smaller batches/patches, "
        "data.cache=none, or ask the instructor for a larger share."
    )

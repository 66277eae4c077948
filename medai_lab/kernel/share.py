"""The kernel's CPU/memory share in words, and a one-time notice after an out-of-memory kill."""

from __future__ import annotations

import os
from pathlib import Path

from medai_lab import cpushare

GIB = 1024**3


def share_line() -> str:
    """``CPU/memory share: 1 CPU(s) (cgroup quota 1), memory 2.0 GiB (cgroup limit)``."""
    s = cpushare.summary()
    cpu = f"{s['threads']} CPU(s)"
    if s["cpu_quota"]:
        cpu += f" (cgroup quota {s['cpu_quota']:g})"
    elif s["affinity"] != s["machine_cpus"]:
        cpu += f" (pinned, machine {s['machine_cpus']})"
    limit = s["memory_limit"] or s["memory_hint"]
    mem = "no memory limit"
    if limit:
        mem = f"memory {limit / GIB:.1f} GiB ({'cgroup limit' if s['memory_limit'] else 'hint'})"
    return f"CPU/memory share: {cpu}, {mem}"


def oom_notice(seen_file: Path | None = None) -> str:
    """The OOM explanation when this server's cgroup counts a kill not yet reported, else ``""``.

    The count seen is kept in ``~/.medai-lab/oom_seen`` (with the cgroup it belongs to), so a
    new kernel says it once after the kernel before it was killed.
    """
    kills = cpushare.oom_kills()
    if not kills:
        return ""
    where = cpushare.own_cgroups().get("memory") or cpushare.own_cgroups().get("", "")
    path = seen_file or Path.home() / ".medai-lab" / "oom_seen"
    try:
        group, _, count = path.read_text().partition("\n")
        if group == where and int(count or 0) >= kills:
            return ""
    except (OSError, ValueError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f"{where}\n{kills}")
        tmp.replace(path)
    except OSError:
        pass
    limit = cpushare.cgroup_memory_limit() or cpushare.memory_limit()
    return cpushare.oom_message(kills, limit)

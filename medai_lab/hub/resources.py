"""CPU and memory per server: per-server share, per-user cap, per-group shares, machine defaults.

Like :class:`~medai_lab.hub.policy.Policy` for GPUs this is pure data and decisions; the
spawner (:mod:`medai_lab.hub.spawner`) applies it and :mod:`medai_lab.hub.limits` enforces it.
A share is carried in JupyterHub's own ``Spawner.cpu_limit`` / ``Spawner.mem_limit``, so the
same thread variables follow from a KubeSpawner profile's ``cpu_limit`` (see :func:`share_env`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medai_lab.cpushare import ENV_MEMORY, thread_env
from medai_lab.errors import MedaiError

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?B?)?\s*$", re.I)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: Kept for the hub, its proxy and services when the defaults split the machine's memory.
HUB_RESERVE = 1024**3


class ResourceError(MedaiError):
    """A resource policy that cannot be applied (bad size, a user over their cap)."""


def parse_size(text: str | int) -> int:
    """Bytes from ``"4G"``, ``"512M"``, ``"1.5GiB"`` or a plain number (binary units)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ResourceError(f"not a memory size: {text!r} (examples: 4G, 512M, 1.5GiB)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _sizes(data: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): parse_size(v) for k, v in dict(data).items()}


def format_size(n: int) -> str:
    """``"2.0 GiB"``-style text."""
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


@dataclass(frozen=True)
class Share:
    """What one server may use: ``cpus`` (fractional; 0 = no limit) and ``memory`` bytes."""

    cpus: float = 0.0
    memory: int = 0

    @property
    def threads(self) -> int:
        """Threads per library: ``ceil(cpus)`` (at least 1); 0 when there is no CPU limit."""
        return max(1, math.ceil(self.cpus - 1e-9)) if self.cpus > 0 else 0

    def describe(self) -> str:
        cpu = f"{self.cpus:g} CPU" if self.cpus else "all CPUs"
        mem = format_size(self.memory) if self.memory else "no memory limit"
        return f"{cpu}, {mem}"


@dataclass(frozen=True)
class ResourcePolicy:
    """CPU/memory policy of the hub (0 everywhere: no limits, today's behaviour).

    Attributes
    ----------
    cpus_per_server, memory_per_server
        The share of one server (CPUs may be fractional: 0.5 = half a core).
    max_cpus_per_user, max_memory_per_user
        Caps over all servers of one user at once (0: only the per-server share applies).
    group_cpus, group_memory
        ``{group: share}`` per server for members (the largest of a user's groups wins),
        e.g. staff with 4 CPUs where students get 1.
    pin
        Also give each server its own cores (CPU affinity) where the share allows.
    """

    cpus_per_server: float = 0.0
    memory_per_server: int = 0
    max_cpus_per_user: float = 0.0
    max_memory_per_user: int = 0
    group_cpus: Mapping[str, float] = field(default_factory=dict)
    group_memory: Mapping[str, int] = field(default_factory=dict)
    pin: bool = True

    @property
    def active(self) -> bool:
        return bool(self.cpus_per_server or self.memory_per_server or self.group_cpus
                    or self.group_memory)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus_per_server": self.cpus_per_server,
            "memory_per_server": self.memory_per_server,
            "max_cpus_per_user": self.max_cpus_per_user,
            "max_memory_per_user": self.max_memory_per_user,
            "group_cpus": dict(self.group_cpus),
            "group_memory": dict(self.group_memory),
            "pin": self.pin,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ResourcePolicy:
        d = dict(data or {})
        return cls(
            cpus_per_server=float(d.get("cpus_per_server", 0)),
            memory_per_server=parse_size(d.get("memory_per_server", 0)),
            max_cpus_per_user=float(d.get("max_cpus_per_user", 0)),
            max_memory_per_user=parse_size(d.get("max_memory_per_user", 0)),
            group_cpus={str(k): float(v) for k, v in dict(d.get("group_cpus", {})).items()},
            group_memory=_sizes(d.get("group_memory", {})),
            pin=bool(d.get("pin", True)),
        )

    def share_for(self, groups: Iterable[str] = (), held: Share = Share()) -> Share:
        """The share of a new server of a user in ``groups`` whose other servers hold ``held``.

        Raises
        ------
        ResourceError
            When the user's other servers already hold their whole per-user cap.
        """
        groups = set(groups)
        cpus = max([self.group_cpus[g] for g in groups if g in self.group_cpus], default=0.0)
        memory = max([self.group_memory[g] for g in groups if g in self.group_memory], default=0)
        cpus, memory = cpus or self.cpus_per_server, memory or self.memory_per_server
        if self.max_cpus_per_user:
            room = self.max_cpus_per_user - held.cpus
            if room < 0.05:
                raise ResourceError(
                    f"your other servers already use your {self.max_cpus_per_user:g} CPU(s): "
                    "stop one of them first"
                )
            cpus = min(cpus, room) if cpus else room
        if self.max_memory_per_user:
            room_mem = self.max_memory_per_user - held.memory
            if room_mem < 64 * 1024**2:
                raise ResourceError(
                    f"your other servers already use your {format_size(self.max_memory_per_user)}"
                    " of memory: stop one of them first"
                )
            memory = min(memory, room_mem) if memory else room_mem
        return Share(round(cpus, 2), int(memory))


def machine() -> tuple[int, int]:
    """This machine's usable CPUs (affinity) and physical memory in bytes."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    return int(cpus or 1), int(memory)


def default_policy(expected_users: int, cpus: int = 0, memory: int = 0) -> ResourcePolicy:
    """Split the machine evenly between ``expected_users`` servers.

    Each server gets ``cpus / users`` CPUs (at least 0.1, a step of 0.05) and ``(memory - 1
    GiB for the hub) / users`` of memory (at least 256 MiB). Caps are limits, not
    reservations: CPU time a server leaves idle is not lent out under a quota, so raise the
    share (or lower ``--expected-users``) when fewer people come.
    """
    if expected_users < 1:
        raise ResourceError("--expected-users must be at least 1")
    found_cpus, found_memory = machine()
    cpus, memory = cpus or found_cpus, memory or found_memory
    per_cpu = max(0.1, math.floor(cpus / expected_users * 20) / 20)
    per_mem = max(256 * 1024**2, (memory - HUB_RESERVE) // expected_users) if memory else 0
    return ResourcePolicy(cpus_per_server=per_cpu, memory_per_server=int(per_mem))


def share_env(cpu_limit: float | None, mem_limit: int | None) -> dict[str, str]:
    """Environment of a server with this share: thread variables, ``MEDAI_CPUS`` and the memory.

    Works from JupyterHub's ``Spawner.cpu_limit`` / ``mem_limit``, so a KubeSpawner profile
    with ``cpu_limit: 4`` gets ``OMP_NUM_THREADS=4`` and the rest.
    """
    env: dict[str, str] = {}
    if cpu_limit:
        env.update(thread_env(Share(float(cpu_limit)).threads))
    if mem_limit:
        env[ENV_MEMORY] = str(int(mem_limit))
    return env


def kube_override(share: Share, guarantee: float = 0.5) -> dict[str, Any]:
    """A KubeSpawner ``kubespawner_override`` for ``share``: requests, limits, thread variables.

    Requests (guarantees) are ``guarantee`` times the limits, so a node can hold more servers
    than it has cores while each stays capped at its share.
    """
    out: dict[str, Any] = {}
    if share.cpus:
        out["cpu_limit"] = share.cpus
        out["cpu_guarantee"] = round(share.cpus * guarantee, 3)
    if share.memory:
        out["mem_limit"] = share.memory
        out["mem_guarantee"] = int(share.memory * guarantee)
    out["environment"] = share_env(share.cpus, share.memory)
    return out

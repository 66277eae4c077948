"""Hand GPU units from the pool to user servers, atomically, and take them back.

>>> from medai_lab.hub.allocator import GpuAllocator
>>> from medai_lab.hub.inventory import parse_inventory
>>> alloc = GpuAllocator(parse_inventory("0,1"), state_path="gpu-state.sqlite")
>>> a = alloc.allocate("alice")          # a.devices == [GpuDevice("0", ...)]
>>> alloc.release("alice")               # ["0"]
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medai_lab.hub.inventory import GpuDevice
from medai_lab.hub.policy import Policy, cpu_message
from medai_lab.hub.state import StateStore


@dataclass(frozen=True)
class Allocation:
    """What one server got.

    Attributes
    ----------
    user, server
        The JupyterHub user and server name (``""`` for the default server).
    devices
        The units held; empty for the CPU profile.
    message
        Why the server got no GPU (empty when it got one, or asked for CPU).
    """

    user: str
    server: str
    devices: tuple[GpuDevice, ...] = field(default_factory=tuple)
    message: str = ""

    @property
    def profile(self) -> str:
        """``"gpu"`` or ``"cpu"``."""
        return "gpu" if self.devices else "cpu"

    def to_dict(self) -> dict:
        """JSON-friendly summary (kept in the spawner state and shown to admins)."""
        return {
            "profile": self.profile,
            "devices": [d.id for d in self.devices],
            "visible": [d.visible for d in self.devices],
            "message": self.message,
        }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class GpuAllocator:
    """The pool, its policy and the persistent state.

    Parameters
    ----------
    devices
        The inventory (see :mod:`medai_lab.hub.inventory`).
    policy
        Allocation policy; default one unit per server and per user, no group quotas.
    state_path
        SQLite state file; several allocators (or a restarted hub) sharing it see one pool.
    clock
        Seconds since the epoch (tests may pass a fake one).
    """

    def __init__(
        self,
        devices: Sequence[GpuDevice],
        policy: Policy | None = None,
        state_path: str | Path = "gpu-state.sqlite",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.devices = list(devices)
        self.policy = policy or Policy()
        self.store = StateStore(state_path)
        self.clock = clock
        self._by_id = {d.id: d for d in self.devices}
        self._order = {d.id: i for i, d in enumerate(self.devices)}

    def allocate(
        self, user: str, server: str = "", groups: Iterable[str] = (), *, want: int | None = None
    ) -> Allocation:
        """Give ``user``'s ``server`` its units, or the CPU profile with a message.

        Idempotent: a server that already holds units (a hub restart, a retried spawn) gets the
        same ones back. ``want=0`` asks for the CPU profile.

        Returns
        -------
        Allocation
            ``devices`` empty and ``message`` set when nothing could be given.
        """
        allocation = self._allocate(user, server, groups, want)
        self._open_session(user, server, allocation.profile)
        return allocation

    def _allocate(
        self, user: str, server: str, groups: Iterable[str], want: int | None
    ) -> Allocation:
        want = self.policy.gpus_per_server if want is None else int(want)
        if want <= 0:
            return Allocation(user, server)
        if not self.devices:
            return Allocation(user, server, message=cpu_message("this hub has no GPUs"))
        want = min(want, self.policy.gpus_per_server)
        with self.store.write() as conn:
            rows = conn.execute("SELECT device, user, server, charged_group FROM allocations")
            held = [tuple(r) for r in rows]
            mine = [d for d, u, s, _ in held if u == user and s == server and d in self._by_id]
            if mine:
                return Allocation(user, server, tuple(self._sorted(mine)))
            user_count = sum(1 for _, u, _, _ in held if u == user)
            if user_count + want > self.policy.max_per_user:
                reason = (
                    f"you already hold {user_count} GPU unit(s), the most one user may hold "
                    f"is {self.policy.max_per_user}"
                )
                return Allocation(user, server, message=cpu_message(reason))
            group_usage = Counter(g for _, _, _, g in held if g)
            group, refusal = self.policy.charge_group(groups, group_usage, want)
            if refusal:
                return Allocation(user, server, message=cpu_message(refusal))
            taken = {d for d, _, _, _ in held}
            chosen = self._choose(taken, want)
            if len(chosen) < want:
                reason = f"all {len(self.devices)} GPU unit(s) of this hub are in use"
                return Allocation(user, server, message=cpu_message(reason))
            now = self.clock()
            for dev in chosen:
                cur = conn.execute(
                    "INSERT INTO usage (user, server, device, kind, gpu_fraction, start)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (user, server, dev.id, dev.kind, dev.gpu_fraction, now),
                )
                conn.execute(
                    "INSERT INTO allocations (device, user, server, charged_group, start, usage_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (dev.id, user, server, group, now, cur.lastrowid),
                )
        return Allocation(user, server, tuple(chosen))

    def _open_session(self, user: str, server: str, profile: str) -> None:
        """Start the server's session record (CPU profile included), unless one is open."""
        with self.store.write() as conn:
            open_ = conn.execute(
                "SELECT 1 FROM sessions WHERE user = ? AND server = ? AND end IS NULL",
                (user, server),
            ).fetchone()
            if open_ is None:
                conn.execute(
                    "INSERT INTO sessions (user, server, profile, start) VALUES (?, ?, ?, ?)",
                    (user, server, profile, self.clock()),
                )

    def _sorted(self, ids: Iterable[str]) -> list[GpuDevice]:
        return sorted((self._by_id[i] for i in ids), key=lambda d: self._order[d.id])

    def _choose(self, taken: set[str], want: int) -> list[GpuDevice]:
        """Free units, spreading over physical GPUs: least-loaded parent first."""
        load = Counter(self._by_id[d].parent for d in taken if d in self._by_id)
        free = [d for d in self.devices if d.id not in taken]
        free.sort(key=lambda d: (load[d.parent], self._order[d.id]))
        chosen: list[GpuDevice] = []
        parents: set[str] = set()
        for dev in free:  # distinct physical GPUs first
            if len(chosen) < want and dev.parent not in parents:
                chosen.append(dev)
                parents.add(dev.parent)
        for dev in free:
            if len(chosen) < want and dev not in chosen:
                chosen.append(dev)
        return chosen

    def release(self, user: str, server: str = "") -> list[str]:
        """Free what ``user``'s ``server`` holds and close its GPU-hours and session records.

        Returns
        -------
        list of str
            The unit ids freed (empty when it held none).
        """
        now = self.clock()
        with self.store.write() as conn:
            rows = conn.execute(
                "SELECT device, usage_id FROM allocations WHERE user = ? AND server = ?",
                (user, server),
            ).fetchall()
            for row in rows:
                conn.execute("UPDATE usage SET end = ? WHERE id = ?", (now, row["usage_id"]))
            conn.execute("DELETE FROM allocations WHERE user = ? AND server = ?", (user, server))
            conn.execute(
                "UPDATE sessions SET end = ? WHERE user = ? AND server = ? AND end IS NULL",
                (now, user, server),
            )
        return [r["device"] for r in rows]

    def rename(self, user: str, old: str, new: str) -> None:
        """Follow a renamed server: its allocation and ledger rows take the new name."""
        with self.store.write() as conn:
            for sql in (
                "UPDATE allocations SET server = ? WHERE user = ? AND server = ?",
                "UPDATE usage SET server = ? WHERE user = ? AND server = ?",
                "UPDATE sessions SET server = ? WHERE user = ? AND server = ?",
            ):
                conn.execute(sql, (new, user, old))

    def set_pid(self, user: str, server: str, pid: int | None) -> None:
        """Record the server's process id (used by :meth:`reconcile` after a hub restart)."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE allocations SET pid = ? WHERE user = ? AND server = ?", (pid, user, server)
            )
            conn.execute(
                "UPDATE sessions SET pid = ? WHERE user = ? AND server = ? AND end IS NULL",
                (pid, user, server),
            )

    def holdings(self) -> dict[str, tuple[str, str]]:
        """``{unit id: (user, server)}`` for every held unit."""
        with self.store.read() as conn:
            rows = conn.execute("SELECT device, user, server FROM allocations").fetchall()
        return {r["device"]: (r["user"], r["server"]) for r in rows}

    def free(self) -> list[GpuDevice]:
        """Units nobody holds."""
        held = self.holdings()
        return [d for d in self.devices if d.id not in held]

    def reconcile(self, alive: Callable[[int], bool] = _pid_alive) -> list[tuple[str, str]]:
        """Release allocations and close sessions whose local server process is gone (call when
        the hub starts).

        Allocations without a recorded pid were mid-spawn when the hub stopped; at hub start no
        spawn is in progress, so they are released too.

        Returns
        -------
        list of (user, server)
            The servers whose units were freed.
        """
        with self.store.read() as conn:
            rows = conn.execute(
                "SELECT user, server, pid FROM allocations UNION "
                "SELECT user, server, pid FROM sessions WHERE end IS NULL"
            ).fetchall()
        stale = sorted(
            {(r["user"], r["server"]) for r in rows if r["pid"] is None or not alive(r["pid"])}
        )
        for user, server in stale:
            self.release(user, server)
        return stale

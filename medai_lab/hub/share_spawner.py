"""``ShareSpawnerMixin``: each server gets its CPU/memory share, enforced, and threads to match.

Mix into any Spawner (before it). At start the share comes from the
:class:`~medai_lab.hub.resources.ResourcePolicy` (``resource_policy``), lands in JupyterHub's
own ``cpu_limit`` / ``mem_limit`` (so ``CPU_LIMIT`` / ``MEM_LIMIT`` are set as usual), is
enforced by :mod:`medai_lab.hub.limits` when the spawner runs the server as a local process,
and sets the thread variables of every kernel the server starts. With KubeSpawner the
profile's ``cpu_limit`` / ``mem_limit`` are enforced by Kubernetes and :meth:`get_env` still
turns them into matching thread variables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from traitlets import Dict, HasTraits, Unicode

from medai_lab.cpushare import ENV_CPUS, ENV_MEMORY, THREAD_VARS
from medai_lab.hub import limits
from medai_lab.hub.resources import ResourcePolicy, Share, share_env

STATE_KEY = "medai_share"


class ShareSpawnerMixin(HasTraits):
    """CPU and memory share per server (see :mod:`medai_lab.hub.resources`)."""

    resource_policy = Dict(
        help="ResourcePolicy.to_dict(): cpus_per_server, memory_per_server, per-user caps, "
        "group shares; empty: no limits."
    ).tag(config=True)
    limits_backend = Unicode(
        "auto", help="How local servers are limited: auto, cgroup2, cgroup1, affinity, none."
    ).tag(config=True)

    _share: Share | None = None
    _placement: limits.Placement | None = None

    def _held_by_user(self) -> Share:
        """What the user's other running servers hold (for the per-user caps)."""
        cpus, memory = 0.0, 0
        for other in getattr(self.user, "spawners", {}).values():
            share = getattr(other, "_share", None)
            if other is not self and share is not None:
                cpus, memory = cpus + share.cpus, memory + share.memory
        return Share(cpus, memory)

    def _take_share(self) -> None:
        policy = ResourcePolicy.from_dict(self.resource_policy)
        if policy.active:
            groups = [g.name for g in getattr(self.user, "groups", [])]
            share = policy.share_for(groups, self._held_by_user())
        elif self._runs_locally() and (self.cpu_limit or self.mem_limit):  # type: ignore[attr-defined]
            # JupyterHub's own c.Spawner.cpu_limit / mem_limit: enforced here too
            share = Share(float(self.cpu_limit or 0), int(self.mem_limit or 0))  # type: ignore[attr-defined]
        else:
            return
        key = limits.server_key(self.user.name, self.name)
        backend = limits.detect(self.limits_backend) if self._runs_locally() else "none"
        try:
            self._placement = limits.place(key, share, backend, policy.pin)
        except (OSError, limits.ResourceError) as exc:  # e.g. a cgroup tree no longer delegated
            self.log.warning("%s: cannot use %s (%s); CPU affinity only", key, backend, exc)
            self._placement = limits.place(key, share, "affinity", policy.pin)
        self._share = share
        self.cpu_limit = share.cpus or None
        self.mem_limit = share.memory or None
        cores = ",".join(map(str, self._placement.cores)) or "any"
        self.log.info("share of %s: %s (%s, cores %s)", key, share.describe(), backend, cores)

    def _runs_locally(self) -> bool:
        return hasattr(self, "make_preexec_fn")

    def _drop_share(self) -> None:
        placement, self._placement, self._share = self._placement, None, None
        if placement is None:
            return
        kills = limits.oom_kills(placement)
        if kills:
            self.log.warning(
                "%s: %d process(es) were stopped by the OOM killer at the memory share",
                placement.key,
                kills,
            )
        limits.release(placement)

    def with_share(self, inner: Callable[[], None] | None) -> Callable[[], None] | None:
        """Wrap a ``preexec_fn``: join the cgroup and pin cores first (still privileged)."""
        if self._placement is None or not (self._placement.folders or self._placement.cores):
            return inner
        setup = limits.child_setup(self._placement)

        def preexec() -> None:
            setup()
            if inner is not None:
                inner()

        return preexec

    async def start(self) -> Any:
        self._take_share()
        try:
            return await super().start()  # type: ignore[misc]
        except BaseException:
            self._drop_share()
            raise

    async def stop(self, now: bool = False) -> Any:
        try:
            return await super().stop(now=now)  # type: ignore[misc]
        finally:
            self._drop_share()

    def get_env(self) -> dict[str, str]:
        env = super().get_env()  # type: ignore[misc]
        own = set(self.environment)  # type: ignore[attr-defined]
        for var in (*THREAD_VARS, ENV_CPUS, ENV_MEMORY):
            if var not in own:
                env.pop(var, None)
        extra = share_env(self.cpu_limit, self.mem_limit)  # type: ignore[attr-defined]
        env.update({k: v for k, v in extra.items() if k not in own})
        return env

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()  # type: ignore[misc]
        if self._placement is not None and self._share is not None:
            state[STATE_KEY] = {
                "share": [self._share.cpus, self._share.memory],
                "placement": self._placement.to_dict(),
            }
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        saved = state.get(STATE_KEY)
        if saved:  # a restarted hub: keep limiting (and later release) the running server
            self._share = Share(float(saved["share"][0]), int(saved["share"][1]))
            self._placement = limits.Placement.from_dict(saved["placement"])
            limits.claim_cores(self._placement)
            self.cpu_limit = self._share.cpus or None
            self.mem_limit = self._share.memory or None

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        if self._share is not None:
            yield {"progress": 15, "message": f"CPU/memory share: {self._share.describe()}"}
        async for event in super().progress():  # type: ignore[misc]
            yield event

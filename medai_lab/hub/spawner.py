"""JupyterHub spawners: GPU allocation for any spawner, and the local spawner of ``medai-lab hub``.

``GpuSpawnerMixin`` takes units from the pool before the server starts, puts them in its
environment (``CUDA_VISIBLE_DEVICES``, ``NVIDIA_VISIBLE_DEVICES``, the memory cap), keeps the
allocation in the spawner state and gives the units back when the server stops, is culled or
dies. ``MedaiSpawner`` is JupyterHub's ``LocalProcessSpawner`` with the mixin, the MLflow
tracking URI + token for every kernel, and a *shared* mode for workshop hubs whose users are
not Unix accounts.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Bool, Dict, HasTraits, Unicode, default

from medai_lab.hub.allocator import Allocation, GpuAllocator
from medai_lab.hub.environment import ALL_VARS, gpu_env
from medai_lab.hub.inventory import GpuDevice, parse_inventory
from medai_lab.hub.policy import Policy
from medai_lab.hub.share_spawner import ShareSpawnerMixin

STATE_KEY = "medai_gpu"
_ALLOCATORS: dict[tuple[str, str, str], GpuAllocator] = {}


def get_allocator(inventory: str, state_path: str, policy: dict[str, Any]) -> GpuAllocator:
    """One allocator per (inventory, state file, policy) in this process (shared by spawners)."""
    import json

    key = (inventory, state_path, json.dumps(policy, sort_keys=True))
    if key not in _ALLOCATORS:
        devices = (
            [GpuDevice.from_dict(d) for d in json.loads(inventory)]
            if inventory.startswith("[")
            else parse_inventory(inventory)
        )
        _ALLOCATORS[key] = GpuAllocator(devices, Policy.from_dict(policy), state_path)
    return _ALLOCATORS[key]


class GpuSpawnerMixin(HasTraits):
    """Mix into a Spawner class (before it): GPU units from the pool for each server."""

    gpu_inventory = Unicode(
        "",
        help="Declared inventory ('0,1', 'MIG-...', '0:4') or a JSON list of GpuDevice dicts.",
    ).tag(config=True)
    gpu_state_path = Unicode(
        "gpu-state.sqlite", help="SQLite file with the allocations (survives hub restarts)."
    ).tag(config=True)
    gpu_policy = Dict(help="Policy.to_dict(): gpus_per_server, max_per_user, group_quotas.").tag(
        config=True
    )

    _gpu_allocation: Allocation | None = None

    @property
    def gpu_allocator(self) -> GpuAllocator:
        return get_allocator(self.gpu_inventory, self.gpu_state_path, dict(self.gpu_policy))

    def _gpu_wanted(self) -> int | None:
        """0 when the user chose the CPU profile (spawn form or API ``{"profile": "cpu"}``)."""
        profile = (self.user_options or {}).get("profile", "")
        if isinstance(profile, list):  # straight from the spawn form
            profile = profile[0] if profile else ""
        return 0 if str(profile).lower() == "cpu" else None

    async def start(self) -> Any:
        user = self.user
        groups = [g.name for g in getattr(user, "groups", [])]
        alloc = self.gpu_allocator.allocate(user.name, self.name, groups, want=self._gpu_wanted())
        self._gpu_allocation = alloc
        log = self.log
        if alloc.devices:
            log.info("GPU for %s/%s: %s", user.name, self.name, alloc.to_dict()["devices"])
        else:
            log.warning("CPU profile for %s/%s: %s", user.name, self.name, alloc.message or "asked")
        try:
            result = await super().start()
        except BaseException:
            self.gpu_allocator.release(user.name, self.name)
            self._gpu_allocation = None
            raise
        pid = getattr(self, "pid", 0)
        if pid:
            self.gpu_allocator.set_pid(user.name, self.name, pid)
        return result

    async def stop(self, now: bool = False) -> Any:
        try:
            return await super().stop(now=now)
        finally:
            freed = self.gpu_allocator.release(self.user.name, self.name)
            if freed:
                self.log.info("released GPU %s of %s/%s", freed, self.user.name, self.name)
            self._gpu_allocation = None

    async def rename(self, old_name: str, new_name: str) -> None:
        await super().rename(old_name, new_name)
        self.gpu_allocator.rename(self.user.name, old_name, new_name)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        for var in ALL_VARS:
            env.pop(var, None)
        if self._gpu_allocation is not None:
            env.update(gpu_env(self._gpu_allocation))
        return env

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._gpu_allocation is not None:
            state[STATE_KEY] = self._gpu_allocation.to_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        saved = state.get(STATE_KEY)
        if saved:
            by_id = {d.id: d for d in self.gpu_allocator.devices}
            devices = tuple(by_id[i] for i in saved.get("devices", []) if i in by_id)
            self._gpu_allocation = Allocation(
                self.user.name, self.name, devices, saved.get("message", "")
            )

    def clear_state(self) -> None:
        super().clear_state()
        self._gpu_allocation = None

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        alloc = self._gpu_allocation
        if alloc is not None and alloc.devices:
            yield {"progress": 20, "message": f"GPU: {', '.join(alloc.to_dict()['devices'])}"}
        elif alloc is not None and alloc.message:
            yield {"progress": 20, "message": alloc.message}
        async for event in super().progress():
            yield event


class MedaiSpawner(ShareSpawnerMixin, GpuSpawnerMixin, LocalProcessSpawner):
    """LocalProcessSpawner + GPU allocation + CPU/memory share + MLflow + a shared (workshop) mode.

    ``isolation="system"``: every hub user is a Unix account (PAM); servers run as that user,
    as in LocalProcessSpawner. ``isolation="shared"``: hub users need no Unix account; every
    server runs as ``run_as`` (default: the hub's own account) in its own home folder from
    ``home_dir_template``. Users of a shared hub are not isolated from each other's files:
    fine for a workshop on a throw-away machine, not for patient data.
    """

    isolation = Unicode("shared", help="'shared' (workshop) or 'system' (Unix users).").tag(
        config=True
    )
    home_dir_template = Unicode(
        "/tmp/medai-hub/{username}", help="Home of each user in shared mode."
    ).tag(config=True)
    run_as = Unicode("", help="Unix account of all servers in shared mode (hub runs as root).").tag(
        config=True
    )
    allow_root = Bool(False, help="Let servers run as root (containers, CI only).").tag(config=True)
    mlflow_tracking_uri = Unicode(
        "", help="MLFLOW_TRACKING_URI for kernels; the server's API token is sent with it."
    ).tag(config=True)

    home_dir = Unicode()

    @default("home_dir")
    def _default_home_dir(self) -> str:
        return self.home_dir_template.format(username=self.user.name)

    def _account(self) -> pwd.struct_passwd | None:
        if self.run_as:
            return pwd.getpwnam(self.run_as)
        return None

    def make_preexec_fn(self, name: str) -> Any:
        if self.isolation == "system":
            return self.with_share(super().make_preexec_fn(name))
        if os.geteuid() == 0 and not self.run_as and not self.allow_root:
            raise RuntimeError(
                "the hub runs as root: set run_as (medai-lab hub --run-as ACCOUNT) so servers do "
                "not run as root, or use --isolation system with Unix users"
            )
        home, account = self.home_dir, self._account()
        os.makedirs(home, 0o750, exist_ok=True)
        if account is not None:
            os.chown(home, account.pw_uid, account.pw_gid)

        def preexec() -> None:  # runs in the child: no logging, no allocations
            if account is not None and os.geteuid() == 0:
                os.setgroups([])
                os.setgid(account.pw_gid)
                os.setuid(account.pw_uid)
            os.chdir(home)

        return self.with_share(preexec)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        if self.isolation == "system":
            return super().user_env(env)
        env["USER"] = self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    def get_args(self) -> list[str]:
        args = super().get_args()
        if self.isolation != "system" and os.geteuid() == 0 and self.allow_root and not self.run_as:
            args.append("--ServerApp.allow_root=True")
        return args

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.mlflow_tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.mlflow_tracking_uri
            env["MLFLOW_TRACKING_TOKEN"] = self.api_token
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        if self.isolation == "system":
            return await super().move_certs(paths)
        return paths

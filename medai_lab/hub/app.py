"""The hub process of ``medai-lab hub``: JupyterHub with a quick, quiet shutdown.

``python -m medai_lab.hub.app -f DATA/jupyterhub_config.py`` runs :class:`MedaiHub`, which is
JupyterHub with two changes to how it stops (on SIGTERM, SIGINT or an admin's shutdown):

* JupyterHub 6 stops its managed services while its periodic service health check may still
  run; the check then reads a server record the shutdown has just deleted and logs an
  ``AttributeError`` traceback. Here the periodic callbacks stop first and a health check in
  flight is cancelled before any service is touched.
* JupyterHub stops managed services one after the other, then the user servers, polling
  each process with a growing pause; here every service and local server process gets its
  SIGINT at once and is polled every 50 ms, then JupyterHub's own cleanup runs (GPU release,
  proxy, records), finding the processes already gone.

A second signal during the shutdown waits for the first one's cleanup instead of starting
another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

from jupyterhub.app import JupyterHub
from jupyterhub.spawner import LocalProcessSpawner


class MedaiHub(JupyterHub):
    """JupyterHub whose shutdown stops health checks first and services together."""

    _cleanup_future: asyncio.Future[None] | None = None
    _health_check: asyncio.Future[Any] | None = None
    _stopping = False

    async def check_services_health(self) -> None:
        if self._stopping:
            return
        self._health_check = asyncio.ensure_future(super().check_services_health())
        try:
            await self._health_check
        except asyncio.CancelledError:
            if not self._stopping:
                raise

    async def cleanup(self) -> None:
        if self._cleanup_future is None:
            self._cleanup_future = asyncio.ensure_future(self._cleanup_once())
        await asyncio.shield(self._cleanup_future)

    async def _cleanup_once(self) -> None:
        self._stopping = True
        for pc in self._periodic_callbacks.values():
            pc.stop()
        check = self._health_check
        if check is not None and not check.done():
            check.cancel()
            await asyncio.gather(check, return_exceptions=True)
        services = [s for s in self._service_map.values() if s.managed and s.spawner]
        servers = []
        if self.cleanup_servers:
            servers = [
                sp
                for user in self.users.values()
                for sp in user.spawners.values()
                if sp.active and isinstance(sp, LocalProcessSpawner)
            ]
        self.log.info("Stopping %i services, %i servers together...", len(services), len(servers))
        await self._interrupt([s.spawner for s in services] + servers)
        if services:
            results = await asyncio.gather(*(s.stop() for s in services), return_exceptions=True)
            for service, result in zip(services, results, strict=True):
                if isinstance(result, Exception):
                    self.log.error("Failed to stop service %s: %s", service.name, result)
        await super().cleanup()

    async def _interrupt(self, spawners: list[Any]) -> None:
        """SIGINT every local process (what JupyterHub sends first) at once and wait, polling
        often, until they have exited or the interrupt timeout has passed; stragglers are left
        to JupyterHub's own escalation (SIGTERM, SIGKILL)."""
        procs = [_Proc(sp) for sp in spawners if getattr(sp, "pid", 0)]
        for proc in procs:
            proc.signal(signal.SIGINT)
        timeout = max((sp.interrupt_timeout for sp in spawners), default=0)
        end = time.monotonic() + timeout
        while any(p.alive() for p in procs) and time.monotonic() < end:
            await asyncio.sleep(0.05)


class _Proc:
    """A spawner's process: its Popen when the hub started it, else its pid (a hub restart)."""

    def __init__(self, spawner: Any) -> None:
        self.popen = getattr(spawner, "proc", None)
        self.pid = int(spawner.pid)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signum)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def main(argv: list[str] | None = None) -> None:
    """Run the hub (the arguments of ``jupyterhub``)."""
    MedaiHub.launch_instance(argv)


if __name__ == "__main__":
    main()

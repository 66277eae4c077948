"""JupyterHub integration: a GPU pool shared fairly between user servers, and ``medai-lab hub``.

Light to import (no JupyterHub, NVML or MLflow until a submodule needs them):

* :mod:`~medai_lab.hub.inventory` - the pool (declared, or found through NVML)
* :mod:`~medai_lab.hub.policy` - per-server, per-user and per-group limits
* :mod:`~medai_lab.hub.allocator` - atomic, persistent allocation (SQLite state)
* :mod:`~medai_lab.hub.environment` - what a server's environment gets from its allocation
* :mod:`~medai_lab.hub.spawner` - ``GpuSpawnerMixin`` and ``MedaiSpawner`` (imports JupyterHub)
* :mod:`~medai_lab.hub.memory` - kernel side: PyTorch memory cap for time-sliced shares
* :mod:`~medai_lab.hub.accounting` - GPU-hours per user, CSV
* :mod:`~medai_lab.hub.authproxy` - hub authentication in front of MLflow (or any web server)
* :mod:`~medai_lab.hub.settings`, :mod:`~medai_lab.hub.services`, :mod:`~medai_lab.hub.config`,
  :mod:`~medai_lab.hub.command` - the ``medai-lab hub`` configuration and command
"""

from __future__ import annotations

from medai_lab.hub.allocator import Allocation, GpuAllocator
from medai_lab.hub.inventory import GpuDevice, parse_inventory
from medai_lab.hub.policy import Policy

__all__ = ["Allocation", "GpuAllocator", "GpuDevice", "Policy", "parse_inventory"]

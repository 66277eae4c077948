"""The GPU pool: whole GPUs, MIG instances and time-sliced shares, declared or found through NVML.

A declared inventory is a comma-separated string (``medai-lab hub --gpus ...``):

``0,1``
    whole GPUs by index (``CUDA_DEVICE_ORDER=PCI_BUS_ID``, the order ``nvidia-smi`` shows).
``GPU-8c1b...``
    a whole GPU by UUID.
``MIG-4f2a...``
    one MIG instance by UUID (``nvidia-smi -L`` lists them).
``0:4`` or ``0:4@0.2``
    GPU 0 time-sliced into 4 shares; each share's kernels may use ``1/4`` (or ``0.2``) of its
    memory (cooperative: PyTorch's allocator cap, see :mod:`medai_lab.hub.memory`).
``auto`` / ``auto:2``
    every GPU (or MIG instance) NVML reports, optionally each GPU split into 2 shares.
``none`` or empty
    no GPUs: every server gets the CPU profile.

NVML (``nvidia-ml-py``) is imported only by :func:`discover_nvml`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from medai_lab.errors import MedaiError

_SHARE = re.compile(r"^(?P<gpu>[0-9]+|GPU-[0-9a-fA-F-]+):(?P<n>[0-9]+)(?:@(?P<frac>[0-9.]+))?$")
_INDEX = re.compile(r"^[0-9]+$")
_UUID = re.compile(r"^(GPU|MIG)-[0-9A-Za-z/-]+$")


class InventoryError(MedaiError):
    """A declared inventory that cannot be parsed, or NVML that cannot be read."""


@dataclass(frozen=True)
class GpuDevice:
    """One allocatable unit of the pool.

    Attributes
    ----------
    id
        Stable key in the allocation state (``"0"``, ``"0#2"``, ``"MIG-..."``).
    visible
        The value for ``CUDA_VISIBLE_DEVICES`` / ``NVIDIA_VISIBLE_DEVICES``.
    kind
        ``"gpu"`` (whole), ``"mig"`` (MIG instance) or ``"share"`` (time-sliced).
    parent
        The physical GPU it lives on (shares of one GPU have the same parent).
    memory_fraction
        Memory cap for shares (0-1), None for whole GPUs and MIG (hardware-isolated).
    name, memory_mb
        What NVML says (empty / 0 when declared).
    """

    id: str
    visible: str
    kind: str = "gpu"
    parent: str = ""
    memory_fraction: float | None = None
    name: str = ""
    memory_mb: int = 0

    @property
    def gpu_fraction(self) -> float:
        """Share of one physical GPU this unit stands for (for GPU-hours)."""
        return self.memory_fraction if self.kind == "share" and self.memory_fraction else 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (round-trips through :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GpuDevice:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _shares(
    gpu: str, n: int, frac: float | None, *, name: str = "", mb: int = 0
) -> list[GpuDevice]:
    if n < 1 or n > 64:
        raise InventoryError(f"share count must be 1-64, got {n} for GPU {gpu}")
    fraction = frac if frac is not None else round(1.0 / n, 4)
    if not 0.0 < fraction <= 1.0:
        raise InventoryError(f"memory fraction must be in (0, 1], got {fraction}")
    if n == 1 and frac is None:
        return [GpuDevice(gpu, gpu, "gpu", gpu, None, name, mb)]
    return [GpuDevice(f"{gpu}#{i}", gpu, "share", gpu, fraction, name, mb) for i in range(n)]


def parse_inventory(spec: str) -> list[GpuDevice]:
    """Parse a declared inventory string (see the module docstring).

    Parameters
    ----------
    spec
        Comma-separated entries; ``auto`` entries are resolved through NVML.

    Returns
    -------
    list of GpuDevice
        In declaration order; duplicates are an error.
    """
    devices: list[GpuDevice] = []
    for raw in (spec or "").split(","):
        entry = raw.strip()
        if not entry or entry.lower() == "none":
            continue
        if entry.lower().startswith("auto"):
            _, _, n = entry.partition(":")
            devices += discover_nvml(shares=int(n) if n else 1)
        elif m := _SHARE.match(entry):
            frac = float(m["frac"]) if m["frac"] else None
            devices += _shares(m["gpu"], int(m["n"]), frac)
        elif _INDEX.match(entry) or _UUID.match(entry):
            kind = "mig" if entry.startswith("MIG-") else "gpu"
            devices.append(GpuDevice(entry, entry, kind, entry))
        else:
            raise InventoryError(
                f"cannot read GPU inventory entry {entry!r}: use an index (0), a UUID "
                "(GPU-..., MIG-...), shares (0:4 or 0:4@0.2), auto or none"
            )
    seen: set[str] = set()
    for dev in devices:
        if dev.id in seen:
            raise InventoryError(f"GPU {dev.id} appears twice in the inventory")
        seen.add(dev.id)
    return devices


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def discover_nvml(shares: int = 1) -> list[GpuDevice]:
    """The GPUs (and MIG instances) of this machine, through NVML.

    Parameters
    ----------
    shares
        Split each whole GPU into this many time-sliced shares (MIG instances are never split).

    Returns
    -------
    list of GpuDevice
        Empty when there is no NVIDIA driver or no ``nvidia-ml-py`` (CPU-only machines).
    """
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    devices: list[GpuDevice] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            mb = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20)
            migs = _mig_devices(pynvml, handle, uuid, name)
            if migs:
                devices += migs
            else:
                devices += _shares(str(index), shares, None, name=name, mb=mb)
    finally:
        pynvml.nvmlShutdown()
    return devices


def _mig_devices(pynvml: Any, handle: Any, parent: str, name: str) -> list[GpuDevice]:
    """MIG instances of one GPU when MIG mode is on, else []."""
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return []
    if current != pynvml.NVML_DEVICE_MIG_ENABLE:
        return []
    out = []
    for i in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
        except pynvml.NVMLError:
            continue
        uuid = _text(pynvml.nvmlDeviceGetUUID(mig))
        mb = int(pynvml.nvmlDeviceGetMemoryInfo(mig).total // 2**20)
        out.append(GpuDevice(uuid, uuid, "mig", parent, None, f"{name} MIG", mb))
    return out


def describe(devices: list[GpuDevice]) -> str:
    """One line for logs: ``"2 units: 0, 1"`` or ``"no GPUs (CPU only)"``."""
    if not devices:
        return "no GPUs (CPU only)"
    return f"{len(devices)} unit(s): " + ", ".join(d.id for d in devices)

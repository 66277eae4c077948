"""Where each sandbox runs: a slot of CPUs, plus a GPU unit from the hub's pool when there is one.

CPU slots split this process's CPU share (:func:`medai_lab.cpushare.cpu_share`, the affinity
mask) into disjoint sets of ``limits.cpus`` cores; a sandbox is pinned to its set
(``sched_setaffinity``, enforced by the kernel) and its libraries get as many threads
(:func:`medai_lab.cpushare.thread_env`). With more workers than sets, sets are shared (noted).

GPU units come from an allocator passed in (the hub's ``GpuAllocator`` fits: ``allocate(user,
server, want=1)`` returning ``.devices``, and ``release(user, server)``), so evaluator and
user servers draw from one pool and never get the same unit. The challenge layer does not
import the hub; the CLI builds the allocator. What each unit gives a sandbox:

- ``CUDA_VISIBLE_DEVICES`` set to the unit (a GPU index/UUID or a MIG UUID): the driver shows
  the sandbox only that device. Enforced for CUDA programs (the device nodes stay readable
  to a process that talks to the driver directly; MIG isolates memory in hardware).
- time-sliced shares: ``MEDAI_GPU_MEMORY_FRACTION``, applied by the worker with
  ``torch.cuda.set_per_process_memory_fraction`` before the model loads. Cooperative: it
  bounds PyTorch's allocator only (not ONNX Runtime or code that calls CUDA itself).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from medai_lab import cpushare
from medai_lab.challenge.errors import ChallengeError

EVALUATOR_USER = "challenge-evaluator"
ALL_GPUS = "all"  # leave CUDA_VISIBLE_DEVICES unset: every device of the machine


@dataclass(frozen=True)
class Slot:
    """One sandbox's resources.

    Attributes
    ----------
    name
        ``cpu0``, ``cpu1`` ... (and ``+gpu:<unit>`` with a GPU).
    cpus
        CPU ids the sandbox is pinned to.
    gpu
        ``CUDA_VISIBLE_DEVICES`` value ("" for none).
    gpu_kind
        ``gpu``, ``mig`` or ``share`` ("" for none).
    memory_fraction
        Cooperative PyTorch memory cap of a time-sliced share, else None.
    notes
        Shortfalls worth recording with the submission (``cpus=shared``).
    """

    name: str
    cpus: tuple[int, ...]
    gpu: str = ""
    gpu_kind: str = ""
    memory_fraction: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def environment(self) -> dict[str, str]:
        """Variables the sandbox worker gets for this slot."""
        env = cpushare.thread_env(len(self.cpus))
        if self.gpu != ALL_GPUS:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        if self.memory_fraction is not None:
            env["MEDAI_GPU_MEMORY_FRACTION"] = f"{self.memory_fraction:g}"
        return env


def cpu_sets(workers: int, per_sandbox: int) -> list[tuple[tuple[int, ...], bool]]:
    """``workers`` CPU sets of ``per_sandbox`` cores from this process's mask; shared flag."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    allowed = allowed or list(range(os.cpu_count() or 1))
    per = max(1, min(per_sandbox, len(allowed)))
    shared = workers * per > len(allowed)
    out = []
    for i in range(workers):
        start = (i * per) % len(allowed)
        cpus = tuple(allowed[(start + k) % len(allowed)] for k in range(per))
        out.append((cpus, shared))
    return out


class SlotPool:
    """``workers`` slots; :meth:`acquire` gives a free one (with a GPU unit when asked).

    Parameters
    ----------
    workers
        Sandboxes at once.
    cpus
        Cores per sandbox (``limits.cpus``).
    gpu
        Whether sandboxes get a GPU unit (``limits.gpu``).
    allocator
        The GPU pool (see module docstring); None: no GPU units.
    """

    def __init__(self, workers: int, cpus: int, gpu: bool = False, allocator: Any = None):
        if workers < 1:
            raise ChallengeError(f"--workers must be 1 or more, got {workers}")
        self._free = [
            Slot(f"cpu{i}", cpus_, notes=("cpus=shared",) if shared else ())
            for i, (cpus_, shared) in enumerate(cpu_sets(workers, cpus))
        ]
        self._lock = threading.Lock()
        self.gpu = gpu
        self.allocator = allocator

    def acquire(self) -> Slot:
        """A free slot; with a GPU pool, a unit for it (or a note that it runs on CPU)."""
        with self._lock:
            if not self._free:
                raise ChallengeError("no free evaluation slot (more sandboxes than --workers)")
            slot = self._free.pop(0)
        if not self.gpu:
            return slot
        if self.allocator is None:  # no pool: the evaluator's own devices, as before pools
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", ALL_GPUS)
            return Slot(slot.name, slot.cpus, visible, "gpu", None, slot.notes)
        got = self.allocator.allocate(EVALUATOR_USER, slot.name, want=1)
        if not got.devices:
            return Slot(slot.name, slot.cpus, notes=(*slot.notes, "gpu=none_free"))
        dev = got.devices[0]
        frac = dev.memory_fraction if dev.kind == "share" else None
        return Slot(slot.name, slot.cpus, dev.visible, dev.kind, frac, slot.notes)

    def release(self, slot: Slot) -> None:
        """Give the slot (and its GPU unit) back."""
        if slot.gpu_kind and self.allocator is not None:
            self.allocator.release(EVALUATOR_USER, slot.name)
        base = Slot(slot.name, slot.cpus, notes=tuple(n for n in slot.notes if n == "cpus=shared"))
        with self._lock:
            self._free.append(base)

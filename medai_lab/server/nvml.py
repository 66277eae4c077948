"""GPU status through NVML (``nvidia-ml-py``, imported lazily); no GPU is a normal answer.

Shared by the server's ``gpus`` handler and the kernel's ``%medai gpu`` magic.
"""

from __future__ import annotations

import os
from typing import Any

# NVML errors that simply mean "this machine has no usable NVIDIA GPU".
_NO_GPU = ("LIBRARY_NOT_FOUND", "DRIVER_NOT_LOADED", "NO_PERMISSION", "NOT_FOUND")


def cpu_only(error: str | None = None) -> dict[str, Any]:
    """The answer for a machine without a usable GPU."""
    return {"cpu_only": True, "gpus": [], "driver": None, "error": error}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _no_gpu_error(pynvml: Any, exc: Exception) -> bool:
    value = getattr(exc, "value", None)
    codes = {getattr(pynvml, f"NVML_ERROR_{name}", None) for name in _NO_GPU}
    return value in codes


def query() -> dict[str, Any]:
    """Every GPU NVML sees: memory, utilisation, processes (``mine``: same OS user).

    Returns
    -------
    dict
        The ``gpus`` answer of ``docs/lab-api.md``. ``error`` is a message when NVML is there
        but failed; a machine with no NVIDIA driver answers ``cpu_only`` with ``error`` None.
    """
    try:
        import pynvml
    except ImportError:
        return cpu_only("nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return cpu_only(None if _no_gpu_error(pynvml, exc) else f"NVML: {exc}")
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return cpu_only()
        me = os.getuid() if hasattr(os, "getuid") else None
        gpus = [_device(pynvml, i, me) for i in range(count)]
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        return {"cpu_only": False, "driver": driver, "gpus": gpus, "error": None}
    except pynvml.NVMLError as exc:
        return cpu_only(f"NVML: {exc}")
    finally:
        pynvml.nvmlShutdown()


def _device(pynvml: Any, index: int, me: int | None) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        utilization: int | None = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except pynvml.NVMLError:
        utilization = None
    processes: dict[int, dict[str, Any]] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            found = getattr(pynvml, getter)(handle)
        except (pynvml.NVMLError, AttributeError):
            continue
        for proc in found:
            used = getattr(proc, "usedGpuMemory", None)
            owner = _owner(proc.pid)
            processes.setdefault(
                proc.pid,
                {"pid": int(proc.pid), "memory": int(used) if used is not None else None,
                 "mine": me is not None and owner == me},
            )  # fmt: skip
    return {
        "index": index,
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "name": _text(pynvml.nvmlDeviceGetName(handle)),
        "memory_total": int(memory.total),
        "memory_used": int(memory.used),
        "utilization": utilization,
        "processes": sorted(processes.values(), key=lambda p: p["pid"]),
    }


def visible(status: dict[str, Any], env: str | None = None) -> list[dict[str, Any]]:
    """The GPUs of ``status`` that ``CUDA_VISIBLE_DEVICES`` lets this process use.

    Parameters
    ----------
    env
        The variable's value (default: this process's environment); unset means all.
    """
    raw = os.environ.get("CUDA_VISIBLE_DEVICES") if env is None else env
    if raw is None:
        return list(status["gpus"])
    wanted = [w.strip() for w in raw.split(",") if w.strip()]
    out = []
    for w in wanted:
        for gpu in status["gpus"]:
            if w == str(gpu["index"]) or (w.startswith("GPU-") and gpu["uuid"].startswith(w)):
                out.append(gpu)
    return out

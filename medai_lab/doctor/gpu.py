"""Doctor checks of torch's build and the GPUs: NVML, MIG, the driver's CUDA version.

Nothing here imports torch (unless ``--deep``): the build comes from ``torch/version.py`` read
as text and the GPUs from NVML, which answers in milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from medai_lab.doctor import Check

_REINSTALL = "rm .venv/.medai-installed && make install TORCH={}"


def torch_build() -> dict[str, Any] | None:
    """``{"version", "cuda", "hip"}`` of the installed torch, not imported; None if absent."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    info: dict[str, Any] = {"version": version, "cuda": None, "hip": None}
    spec = importlib.util.find_spec("torch")  # locates the package, runs nothing
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
        try:
            text = path.read_text()
        except OSError:
            text = ""
        for key in ("cuda", "hip"):
            m = re.search(rf"^{key}\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
            info[key] = m.group(1) if m else None
    return info


def nvml_inventory() -> dict[str, Any]:
    """GPUs, MIG instances and the driver as NVML reports them (``gpus`` empty without one)."""
    from medai_lab.server.nvml import query

    status = query()  # no driver / no nvidia-ml-py is a normal answer here
    out: dict[str, Any] = {"status": status, "units": [], "cuda_driver": None, "error": None}
    if status["cpu_only"]:
        out["error"] = status.get("error")
        return out
    from medai_lab.hub.inventory import InventoryError, discover_nvml

    try:
        out["units"] = discover_nvml()  # what the hub would hand out: GPUs or MIG instances
    except InventoryError as exc:
        out["error"] = str(exc)
    out["cuda_driver"] = _cuda_driver_version()
    return out


def _cuda_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            raw = int(pynvml.nvmlSystemGetCudaDriverVersion_v2())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None
    return f"{raw // 1000}.{raw % 1000 // 10}"


def _as_tuple(version: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version or "")[:2])


def torch_and_gpus() -> list[Check]:
    """torch's build and the GPUs, and whether the two go together."""
    return _judge(torch_build(), nvml_inventory(), None)


def torch_and_gpus_deep() -> list[Check]:
    """As :func:`torch_and_gpus`, plus what an imported torch sees (a subprocess, seconds)."""
    return _judge(torch_build(), nvml_inventory(), _torch_sees())


def _torch_sees() -> dict[str, Any]:
    code = (
        "import json, torch\n"
        "mps = getattr(torch.backends, 'mps', None)\n"
        "c = torch.cuda.is_available()\n"
        "print(json.dumps({'cuda': c, 'devices': torch.cuda.device_count() if c else 0,"
        " 'bf16': bool(c and torch.cuda.is_bf16_supported()),"
        " 'mps': bool(mps and mps.is_available()), 'threads': torch.get_num_threads()}))\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}


def _judge(
    build: dict[str, Any] | None, inv: dict[str, Any], sees: dict[str, Any] | None
) -> list[Check]:
    status = inv["status"]
    gpus = status["gpus"]
    out = [_gpu_line(inv)]
    if build is None:
        out.append(
            Check(
                "torch",
                "warn",
                "not installed: training, export and the demo need it",
                "make install (the lock brings the right build)",
            )
        )
        return out
    version, cuda = build["version"], build["cuda"]
    mac = sys.platform == "darwin"
    kind = f"CUDA {cuda}" if cuda else f"ROCm {build['hip']}" if build["hip"] else "CPU"
    if mac:
        kind = "CPU + MPS" if platform.machine() == "arm64" else "CPU"
    detail = f"{version} ({kind} build)"
    if gpus and not cuda and not build["hip"]:
        out.append(
            Check(
                "torch",
                "warn",
                f"{detail} on a machine with {len(gpus)} NVIDIA GPU(s)",
                _REINSTALL.format("cuda"),
            )
        )
    elif cuda and gpus and inv["cuda_driver"] and _as_tuple(inv["cuda_driver"]) < _as_tuple(cuda):
        out.append(
            Check(
                "torch",
                "fail",
                f"{detail}, but the driver supports CUDA {inv['cuda_driver']} only",
                f"update the NVIDIA driver to one for CUDA {cuda} (CUDA 13 needs >= 580), or "
                + _REINSTALL.format("cpu"),
            )
        )
    elif cuda and not gpus:
        out.append(Check("torch", "ok", f"{detail}; no GPU here, so it runs on the CPU"))
    else:
        out.append(Check("torch", "ok", detail))
    if sees is not None:
        out.append(_sees_line(sees, bool(gpus)))
    return out


def _gpu_line(inv: dict[str, Any]) -> Check:
    status = inv["status"]
    if status["cpu_only"]:
        if inv["error"] == "nvidia-ml-py is not installed":
            return Check(
                "gpu",
                "warn",
                "NVML binding missing: GPUs cannot be listed",
                "make install (nvidia-ml-py is in the lock)",
            )
        if inv["error"]:
            return Check(
                "gpu",
                "warn",
                f"NVML failed: {inv['error']}",
                "check the driver with nvidia-smi; containers need --gpus all",
            )
        if Path("/dev/nvidia0").exists():
            return Check(
                "gpu",
                "warn",
                "/dev/nvidia0 exists but NVML finds no GPU",
                "load the NVIDIA driver (nvidia-smi should list the GPU)",
            )
        note = "Apple GPU through MPS" if sys.platform == "darwin" else "CPU training"
        return Check("gpu", "ok", f"no NVIDIA GPU ({note}: --preset cpu; gpu/ddp need CUDA)")
    parts = []
    for g in status["gpus"]:
        parts.append(f"{g['index']}: {g['name']} {g['memory_total'] / 1024**3:.0f} GiB")
    migs = [u for u in inv["units"] if u.kind == "mig"]
    driver = f"driver {status['driver']}"
    if inv["cuda_driver"]:
        driver += f" (CUDA {inv['cuda_driver']})"
    detail = f"{len(status['gpus'])} GPU(s), {driver}; " + "; ".join(parts)
    if migs:
        detail += f"; MIG: {len(migs)} instance(s) ({', '.join(u.name for u in migs)})"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        detail += f"; CUDA_VISIBLE_DEVICES={visible or '(empty: none)'}"
    return Check("gpu", "ok", detail)


def _sees_line(sees: dict[str, Any], gpus: bool) -> Check:
    if "error" in sees:
        return Check(
            "torch sees",
            "fail",
            f"import torch failed: {sees['error']}",
            "make install (re-syncs the lock)",
        )
    detail = (
        f"cuda available {sees['cuda']} ({sees['devices']} device(s), bf16 {sees['bf16']}), "
        f"mps {sees['mps']}, {sees['threads']} CPU thread(s)"
    )
    if gpus and not sees["cuda"]:
        return Check("torch sees", "fail", detail, "torch cannot use the GPU: see the torch line")
    return Check("torch sees", "ok", detail)

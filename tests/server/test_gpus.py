"""``gpus``: NVML when there is a GPU, ``cpu_only`` (and why) when there is none."""

from __future__ import annotations

import json
import os
import sys
import types
from typing import Any

import pytest

from medai_lab.kernel.magics import gpu_report
from medai_lab.server import handlers, nvml


@pytest.fixture(autouse=True)
def _no_gpu_cache() -> None:
    handlers.GpusHandler._last = None


def _has_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


async def test_endpoint_answers_the_contract_shape(jp_fetch) -> None:
    body = json.loads((await jp_fetch("medai-lab", "api", "gpus")).body)
    assert set(body) == {"cpu_only", "gpus", "driver", "error"}
    if _has_gpu():
        assert body["cpu_only"] is False and body["gpus"] and body["driver"]
        assert {"index", "uuid", "name", "memory_total", "memory_used", "utilization",
                "processes"} <= set(body["gpus"][0])  # fmt: skip
    else:
        assert body == {"cpu_only": True, "gpus": [], "driver": None, "error": body["error"]}


async def test_machine_without_gpu_goes_through_the_real_nvml_error(jp_fetch) -> None:
    """No mocks: NVML itself fails here (no libnvidia-ml), and the answer is CPU only."""
    pynvml = pytest.importorskip("pynvml")
    if _has_gpu():
        pytest.skip("this machine has an NVIDIA GPU")
    with pytest.raises(pynvml.NVMLError) as info:
        pynvml.nvmlInit()
    body = json.loads((await jp_fetch("medai-lab", "api", "gpus")).body)
    assert body["cpu_only"] is True and body["gpus"] == []
    if info.value.value == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        assert body["error"] is None  # no driver: the ordinary CPU-only machine
    assert gpu_report(body).startswith("CPU only")


def test_missing_nvidia_ml_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if not installed
    assert nvml.query() == nvml.cpu_only("nvidia-ml-py is not installed")


class _FakeNvml(types.SimpleNamespace):
    """The NVML calls ``query`` makes, answering for two GPUs (covers the GPU path here)."""

    class NVMLError(Exception):
        value = 999

    NVML_ERROR_LIBRARY_NOT_FOUND = 12

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return types.SimpleNamespace(total=80 * 1024**3, used=(h + 1) * 1024**3)

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        if h == 1:
            raise self.NVMLError()
        return types.SimpleNamespace(gpu=35)

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Any]:
        return [types.SimpleNamespace(pid=self.pid, usedGpuMemory=2 * 1024**3),
                types.SimpleNamespace(pid=1, usedGpuMemory=None)] if h == 0 else []  # fmt: skip

    def nvmlDeviceGetUUID(self, h: int) -> bytes:
        return f"GPU-{h}abc".encode()

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H100"


def test_gpu_path_and_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(os.getpid()))
    status = nvml.query()
    assert status["cpu_only"] is False and status["driver"] == "550.54"
    gpu0, gpu1 = status["gpus"]
    assert gpu0["name"] == "NVIDIA H100" and gpu0["uuid"] == "GPU-0abc"
    assert gpu0["utilization"] == 35 and gpu1["utilization"] is None
    mine = {p["pid"]: p["mine"] for p in gpu0["processes"]}
    assert mine[os.getpid()] is True
    assert mine[1] is (os.getuid() == 0)  # pid 1 belongs to root
    assert nvml.visible(status, "1") == [gpu1]
    assert nvml.visible(status, "GPU-0") == [gpu0]
    assert nvml.visible(status, "") == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    report = gpu_report(status, pid=os.getpid())
    assert "GPU0 NVIDIA H100: 1.0/80.0 GB used, 35% busy; this kernel uses 2.0 GB" in report
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "hides every GPU" in gpu_report(status)


async def test_share_endpoint_reports_this_servers_cpu_and_memory(jp_fetch) -> None:
    from medai_lab import cpushare

    body = json.loads((await jp_fetch("medai-lab", "api", "share")).body)
    assert set(body) == {"cpus", "threads", "memory"}
    assert body["cpus"] == round(cpushare.cpu_share(), 2)
    assert body["threads"] == cpushare.cpu_count()
    assert body["memory"] == cpushare.memory_limit()

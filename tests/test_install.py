"""`make install` picks the lock and the torch build for the machine it runs on.

`make -n` prints the resolver command without running it; nvidia-smi and uname are stubbed on
PATH and the wheel folder is a variable, so each machine kind is checked here. The PyTorch index
is not reachable from CI: the flags are checked, and the pinned uv parses them (a dry run
against this venv).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_LOCK = ROOT / "environments" / "requirements-cpu.lock"
CUDA_LOCK = ROOT / "environments" / "requirements-cuda.lock"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _pin(lock: Path, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)", lock.read_text(), re.MULTILINE)
    assert match, f"{name} is not pinned in {lock.name}"
    return match.group(1)


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _plan(tmp_path: Path, *, gpu: str | None, os_name: str = "Linux", **make_vars: str) -> dict:
    """What `make -n python-env` would run: the `uv pip` line and the message on stderr."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    if gpu == "gpu":
        _stub(stubs, "nvidia-smi", 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f0e)"')
    elif gpu == "no-driver":  # the tool exists (a container image) but no driver answers
        _stub(stubs, "nvidia-smi", 'echo "NVIDIA-SMI has failed: no driver" >&2; exit 9')
    # Otherwise `nvidia-smi` is absent: folders holding a real one are left off PATH.
    system = [
        p for p in os.environ["PATH"].split(os.pathsep) if p and not Path(p, "nvidia-smi").exists()
    ]
    if shutil.which("make", path=os.pathsep.join(system)) is None:
        pytest.skip("nvidia-smi lives beside make here: cannot hide it")
    _stub(stubs, "uname", f'echo "{os_name}"')
    venv = tmp_path / "venv"
    args = [f"{k}={v}" for k, v in {"VENV": str(venv), **make_vars}.items()]
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "python-env", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": os.pathsep.join([str(stubs), *system])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    uv_pip = re.compile(r"\S*/uv pip (sync|install) ")
    resolver = [ln for ln in proc.stdout.splitlines() if uv_pip.match(ln) and "-e ." not in ln]
    assert len(resolver) == 1, proc.stdout
    return {"cmd": resolver[0].split(), "said": proc.stderr, "venv": venv}


def _wheel_folder(tmp_path: Path, with_torch: bool) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    if with_torch:  # only the name matters to the selection; nothing is installed from it
        pin = _pin(CPU_LOCK, "torch")
        (folder / f"torch-{pin}-cp311-cp311-manylinux_2_28_x86_64.whl").touch()
    return folder


def test_cpu_machine_with_the_wheel_folder_takes_torch_from_it(tmp_path):
    wheels = _wheel_folder(tmp_path, with_torch=True)
    plan = _plan(tmp_path, gpu=None, FIND_LINKS=str(wheels))
    cmd = plan["cmd"]
    assert cmd[1:3] == ["pip", "sync"] and cmd[-1].endswith("requirements-cpu.lock")
    assert cmd[cmd.index("--find-links") + 1] == str(wheels)
    assert "--torch-backend" not in cmd  # offline build farm: no index needed for torch
    assert "--compile-bytecode" in cmd  # a fresh venv's first import would compile on one core
    assert cmd[cmd.index("--python") + 1] == str(plan["venv"] / "bin" / "python")


@pytest.mark.parametrize("gpu", [None, "no-driver"])
def test_cpu_machine_without_the_wheel_folder_takes_torch_from_the_pytorch_cpu_index(tmp_path, gpu):
    cmd = _plan(tmp_path, gpu=gpu, FIND_LINKS="")["cmd"]
    assert cmd[1:3] == ["pip", "sync"] and cmd[-1].endswith("requirements-cpu.lock")
    # uv sends only PyTorch's own packages (torch, torchvision, triton, ...) to
    # download.pytorch.org/whl/cpu; every other pin still comes from PyPI.
    assert cmd[cmd.index("--torch-backend") + 1] == "cpu"
    assert "--find-links" not in cmd and "--extra-index-url" not in cmd
    assert "--index-strategy" not in cmd  # no index may shadow PyPI for other packages


def test_a_wheel_folder_without_the_pinned_torch_still_uses_the_pytorch_index(tmp_path):
    wheels = _wheel_folder(tmp_path, with_torch=False)
    cmd = _plan(tmp_path, gpu=None, FIND_LINKS=str(wheels))["cmd"]
    assert cmd[cmd.index("--torch-backend") + 1] == "cpu"
    assert cmd[cmd.index("--find-links") + 1] == str(wheels)


def test_gpu_machine_takes_the_cuda_lock_unless_told_cpu(tmp_path):
    wheels = _wheel_folder(tmp_path, with_torch=True)
    plan = _plan(tmp_path, gpu="gpu", FIND_LINKS=str(wheels))
    cmd = plan["cmd"]
    assert cmd[1:3] == ["pip", "sync"] and cmd[-1].endswith("requirements-cuda.lock")
    assert "--torch-backend" not in cmd  # PyPI's torch of that version is the CUDA build
    assert "1 NVIDIA GPU" in plan["said"]
    forced = _plan(tmp_path, gpu="gpu", FIND_LINKS=str(wheels), TORCH="cpu")["cmd"]
    assert forced[-1].endswith("requirements-cpu.lock")


def test_macos_installs_the_cpu_lock_with_the_same_torch_version_from_pypi(tmp_path):
    plan = _plan(tmp_path, gpu=None, os_name="Darwin", FIND_LINKS="")
    cmd = plan["cmd"]
    # `install`, not `sync`: it also resolves macOS-only dependencies the Linux lock lacks.
    assert cmd[1:3] == ["pip", "install"]
    assert cmd[cmd.index("-r") + 1].endswith("requirements-cpu.lock")
    override = Path(cmd[cmd.index("--overrides") + 1])
    version = _pin(CPU_LOCK, "torch").split("+")[0]
    assert override.read_text().split() == [f"torch=={version}"]
    assert "--torch-backend" not in cmd


def test_bad_torch_choice_stops_make_with_one_line(tmp_path):
    proc = subprocess.run(
        [str(ROOT / "environments" / "select_lock.sh"), "--torch", "rocm"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "select_lock.sh: TORCH must be auto, cpu or cuda, got 'rocm'"
    ]


def test_locks_pin_the_same_torch_and_only_the_cuda_lock_has_cuda_packages():
    cpu, cuda = _pin(CPU_LOCK, "torch"), _pin(CUDA_LOCK, "torch")
    assert cpu.endswith("+cpu") and cpu.split("+")[0] == cuda
    cuda_runtime = re.compile(r"^nvidia-(?!ml-py)\S+==", re.MULTILINE)  # nvidia-ml-py is NVML
    assert not cuda_runtime.search(CPU_LOCK.read_text())
    assert cuda_runtime.search(CUDA_LOCK.read_text())


def test_pinned_uv_accepts_the_cpu_index_command_line(tmp_path):
    """A dry run against this venv: the flags parse and torch==X+cpu satisfies the lock."""
    uv = Path(sys.prefix) / "bin" / "uv"
    if not uv.is_file():
        pytest.skip("uv is not in this venv")
    cmd = _plan(tmp_path, gpu=None, FIND_LINKS="")["cmd"]
    cmd[0] = str(uv)
    cmd[cmd.index("--python") + 1] = sys.executable
    proc = subprocess.run(
        [*cmd[:3], "--dry-run", "--offline", *cmd[3:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch" not in re.findall(r"^ [-+] (\S+)==", proc.stderr, re.MULTILINE)

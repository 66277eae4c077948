"""`medai-lab doctor` on this real machine, with real files, stores and PATHs changed per test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testsupport import missing_component

from medai_lab.doctor import STATUSES, Check, Report, format_report, run_checks
from medai_lab.doctor.gpu import _judge, torch_build

MEDAI = [sys.executable, "-m", "medai_lab.cli"]


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run(
        [*MEDAI, "doctor", *args], capture_output=True, text=True, env=full, timeout=60
    )
    print(f"medai-lab doctor {' '.join(args)}: {time.perf_counter() - start:.2f} s wall")
    return proc


def _by_name(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in report["checks"]:
        out.setdefault(c["name"], []).append(c)
    return out


@pytest.fixture
def key_env(tmp_path: Path) -> dict[str, str]:
    return {"MEDAI_DEID_KEY_FILE": str(tmp_path / "deid.key")}


def test_every_line_has_a_status_and_every_problem_a_fix(key_env):
    proc = _doctor("--json", env=key_env)
    report = json.loads(proc.stdout)
    assert report["checks"], proc.stderr
    names = {c["name"] for c in report["checks"]}
    for expected in ("python", "torch", "gpu", "/dev/shm", "mlflow", "deid key", "node/npm",
                     "disk", "dcm2niix", "orthanc", "plastimatch", "dcmqi", "dciodvfy",
                     "OCR engine"):  # fmt: skip
        assert expected in names
    for c in report["checks"]:
        assert c["status"] in STATUSES
        if c["status"] != "ok":
            assert c["fix"], c
    # exit status follows the worst line: non-zero only for a fail
    assert proc.returncode == (1 if report["counts"]["fail"] else 0)


def test_an_open_key_file_fails_and_says_chmod(tmp_path, key_env):
    key = Path(key_env["MEDAI_DEID_KEY_FILE"])
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o644)
    proc = _doctor(env=key_env)
    assert proc.returncode == 1
    assert f"chmod 600 {key}" in proc.stdout
    assert "ab" * 32 not in proc.stdout  # the key itself is never shown
    key.chmod(0o600)
    line = _by_name(json.loads(_doctor("--json", env=key_env).stdout))["deid key"][0]
    assert line["status"] == "ok" and "0600" in line["detail"]


def test_a_key_file_that_is_no_key_fails(key_env):
    key = Path(key_env["MEDAI_DEID_KEY_FILE"])
    key.write_text("not a key\n")
    key.chmod(0o600)
    line = _by_name(json.loads(_doctor("--json", env=key_env).stdout))["deid key"][0]
    assert line["status"] == "fail" and "hex key" in line["detail"]


def test_a_missing_key_is_fine_and_the_doctor_does_not_create_it(key_env):
    line = _by_name(json.loads(_doctor("--json", env=key_env).stdout))["deid key"][0]
    assert line["status"] == "ok" and "creates it" in line["detail"]
    assert not Path(key_env["MEDAI_DEID_KEY_FILE"]).exists()


def test_mlflow_line_names_the_store_runs_will_use(store, key_env):
    env = {**key_env, "MLFLOW_TRACKING_URI": store}
    line = _by_name(json.loads(_doctor("--json", env=env).stdout))["mlflow"][0]
    assert line["status"] == "ok"
    assert store in line["detail"] and "0 run(s)" in line["detail"]


def test_an_unreachable_tracking_server_is_a_warning(key_env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**key_env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    line = _by_name(json.loads(_doctor("--json", env=env).stdout))["mlflow"][0]
    assert line["status"] == "warn" and "no answer" in line["detail"] and line["fix"]


def test_missing_tools_are_warnings_with_the_install_command(tmp_path, key_env):
    # PATH without the folders that hold dcm2niix and node (python is called by full path)
    tools = [shutil.which("dcm2niix"), shutil.which("node")]
    hidden = {Path(t).resolve().parent for t in tools if t}
    if not hidden:
        missing_component("dcm2niix and node (Debian dcm2niix, nodejs)")
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() not in hidden
    )
    proc = _doctor("--json", env={**key_env, "PATH": path})
    checks = _by_name(json.loads(proc.stdout))
    if shutil.which("dcm2niix"):
        dcm = checks["dcm2niix"][0]
        assert dcm["status"] == "warn" and "dcm2niix" in dcm["fix"]
    if shutil.which("node"):
        node = checks["node/npm"][0]
        assert node["status"] in ("warn", "fail") and "node missing" in node["detail"]
    failed = any(c["status"] == "fail" for found in checks.values() for c in found)
    assert proc.returncode == (1 if failed else 0)


def test_the_doctor_never_imports_torch():
    code = (
        "import sys\n"
        "from medai_lab.doctor import run_checks\n"
        "run_checks()\n"
        "names = ('torch', 'monai', 'mlflow', 'pytorch_lightning')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_torch_build_is_read_without_importing_it():
    build = torch_build()
    if build is None:
        missing_component("torch (the lock installs it)")
    import torch

    assert build["version"] == torch.__version__
    assert build["cuda"] == torch.version.cuda


def _inventory(gpus: int, cuda_driver: str | None = None) -> dict:
    """What nvml_inventory() returns, shaped as NVML reports a machine with `gpus` GPUs."""
    status = {"cpu_only": gpus == 0, "driver": "580.65" if gpus else None, "error": None,
              "gpus": [{"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{i}",
                        "memory_total": 80 * 1024**3, "memory_used": 0, "utilization": 0,
                        "processes": []} for i in range(gpus)]}  # fmt: skip
    return {"status": status, "units": [], "cuda_driver": cuda_driver, "error": None}


def test_cpu_torch_on_a_gpu_machine_says_how_to_get_the_cuda_build():
    build = {"version": "2.13.0+cpu", "cuda": None, "hip": None}
    gpu, torch_line = _judge(build, _inventory(2, "13.0"), None)
    assert gpu.status == "ok" and "2 GPU(s)" in gpu.detail and "CUDA 13.0" in gpu.detail
    assert torch_line.status == "warn" and "TORCH=cuda" in torch_line.fix


def test_a_driver_older_than_torchs_cuda_fails():
    build = {"version": "2.13.0", "cuda": "13.0", "hip": None}
    torch_line = _judge(build, _inventory(1, "12.4"), None)[1]
    assert torch_line.status == "fail" and "12.4" in torch_line.detail
    assert _judge(build, _inventory(1, "13.0"), None)[1].status == "ok"
    # the CUDA build on a machine without a GPU still runs (on the CPU)
    assert _judge(build, _inventory(0), None)[1].status == "ok"


def test_report_format_and_worst_status():
    report = Report([Check("a", "ok", "fine"), Check("b", "warn", "hmm", "do x")], 0.1)
    text = format_report(report)
    assert report.worst() == "warn" and "fix: do x" in text and "1 ok, 1 warn, 0 fail" in text
    report.checks.append(Check("c", "fail", "broken", "do y"))
    assert report.worst() == "fail" and report.to_dict()["counts"]["fail"] == 1


def test_run_checks_in_process_matches_the_command(key_env, monkeypatch):
    monkeypatch.setenv("MEDAI_DEID_KEY_FILE", key_env["MEDAI_DEID_KEY_FILE"])
    report = run_checks()
    print(f"run_checks: {report.seconds:.2f} s")
    assert [c.name for c in report.checks][:2] == ["python", "medai-lab"]

"""Static checks: Dockerfile, Helm values, conda file, binder files and the proxy pin parse, and
every version they pin agrees with the locks (which agree with each other)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = ROOT / "environments"
CPU_LOCK = ENV / "requirements-cpu.lock"
CUDA_LOCK = ENV / "requirements-cuda.lock"
PIN = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)")
DOCKER_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m and not line.startswith((" ", "#")):
            pins[norm(m[1])] = m[2]
    return pins


def base_version(v: str) -> str:
    return v.split("+", 1)[0]


def pins_in(text: str) -> dict[str, str]:
    return {norm(n): v for n, v in PIN.findall(text)}


def agree_with_lock(pins: dict[str, str], where: str) -> None:
    cpu = lock(CPU_LOCK)
    for name, version in pins.items():
        assert name in cpu, f"{where} pins {name}=={version}, which is not in the CPU lock"
        assert base_version(version) == base_version(cpu[name]), (
            f"{where} pins {name}=={version}, the lock has {cpu[name]}"
        )


def project_version() -> str:
    m = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert m, "pyproject.toml has a version"
    return m[1]


def lock_python() -> str:
    m = re.search(r"--python-version (\d+\.\d+)", CPU_LOCK.read_text())
    assert m, "the lock header names its Python version"
    return m[1]


def test_cpu_and_cuda_locks_have_the_same_versions():
    cpu, cuda = lock(CPU_LOCK), lock(CUDA_LOCK)
    assert cpu["torch"] == cuda["torch"] + "+cpu"
    for name, version in cpu.items():
        assert name in cuda, f"{name} is in the CPU lock only"
        assert base_version(cuda[name]) == base_version(version), name
    extra = {n for n in cuda if n not in cpu}
    assert all(n.startswith(("nvidia-", "triton", "cuda-")) for n in extra), extra


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += " " + line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        word, _, args = pending.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    assert not pending, "a continuation line runs off the end of the Dockerfile"
    return out


def test_dockerfile():
    text = (ENV / "Dockerfile").read_text()
    instructions = dockerfile_instructions(text)
    words = [w for w, _ in instructions]
    assert set(words) <= DOCKER_INSTRUCTIONS, set(words) - DOCKER_INSTRUCTIONS
    assert words[0] in ("ARG", "FROM") and words[-1] == "CMD"
    stages = [a for w, a in instructions if w == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS wheel")
    args = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    assert args["PYTHON_VERSION"] == lock_python()
    assert re.match(r"(quay\.io/jupyter/|jupyter/|nvidia/cuda:)", args["BASE_IMAGE"])
    assert args["BASE_IMAGE"].endswith(f"python-{lock_python()}")
    copies = " ".join(a for w, a in instructions if w == "COPY")
    assert "environments/requirements-cuda.lock" in copies
    assert "--shm-size" in text and "/dev/shm" in text
    labels = " ".join(a for w, a in instructions if w == "LABEL")
    assert f'org.opencontainers.image.version="{project_version()}"' in labels
    runs = " ".join(a for w, a in instructions if w == "RUN")
    agree_with_lock(pins_in(runs), "environments/Dockerfile")
    assert "labextension" in runs and "--no-deps" in runs


def test_helm_values():
    values = yaml.safe_load((ENV / "helm" / "values.yaml").read_text())
    single = values["singleuser"]
    assert single["image"]["tag"] == project_version()
    profiles = {p["slug"]: p for p in single["profileList"]}
    assert set(profiles) == {"cpu", "gpu", "mig"}
    assert profiles["cpu"]["kubespawner_override"]["environment"]["CUDA_VISIBLE_DEVICES"] == "-1"
    gpu_limits = profiles["gpu"]["kubespawner_override"]["extra_resource_limits"]
    assert gpu_limits == {"nvidia.com/gpu": "1"}
    mig_limits = profiles["mig"]["kubespawner_override"]["extra_resource_limits"]
    assert list(mig_limits) == ["nvidia.com/mig-1g.10gb"]
    volumes = {v["name"]: v for v in single["storage"]["extraVolumes"]}
    mounts = {m["name"]: m for m in single["storage"]["extraVolumeMounts"]}
    assert volumes["shared-data"]["persistentVolumeClaim"]["readOnly"] is True
    assert mounts["shared-data"]["readOnly"] is True
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert mounts["dshm"]["mountPath"] == "/dev/shm"
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] > 0
    hub = values["hub"]
    assert hub["services"]["mlflow"]["url"].startswith("http://")
    assert "access:services!service=mlflow" in hub["loadRoles"]["user"]["scopes"]
    for name, code in hub["extraConfig"].items():
        compile(code, f"hub.extraConfig.{name}", "exec")
    assert "MLFLOW_TRACKING_TOKEN" in hub["extraConfig"]["medai-mlflow"]


def test_conda_environment():
    env = yaml.safe_load((ENV / "environment.yml").read_text())
    deps = env["dependencies"]
    assert f"python={lock_python()}" in deps
    assert any(str(d).startswith("nodejs=") for d in deps)
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements-cpu.lock" in pip
    assert (ENV / "requirements-cpu.lock").exists()
    conda_pins = {norm(n): v for n, v in (str(d).split("=", 1) for d in deps if "=" in str(d))}
    assert conda_pins["python"] == lock_python()
    agree_with_lock(pins_in("\n".join(pip)), "environments/environment.yml")


def test_binder_files():
    binder = ROOT / "binder"
    req = (binder / "requirements.txt").read_text()
    includes = re.findall(r"^-r\s+(\S+)", req, flags=re.M)
    assert [(binder / i).resolve() for i in includes] == [CPU_LOCK.resolve()]
    agree_with_lock(pins_in(req), "binder/requirements.txt")
    assert (binder / "runtime.txt").read_text().strip() == f"python-{lock_python()}"
    bash = shutil.which("bash")
    for name in ("postBuild", "start"):
        script = binder / name
        assert script.stat().st_mode & 0o111, f"binder/{name} must be executable"
        assert script.read_text().startswith("#!/usr/bin/env bash")
        if bash:
            subprocess.run([bash, "-n", str(script)], check=True, timeout=30)
    start = (binder / "start").read_text()
    assert start.rstrip().endswith('exec "$@"') and "medai-lab demo" in start
    assert "CUDA_VISIBLE_DEVICES=-1" in start


def test_proxy_pin():
    proxy = ROOT / "medai_lab" / "hub" / "proxy"
    package = json.loads((proxy / "package.json").read_text())
    pinned = package["dependencies"]["configurable-http-proxy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin an exact version"
    locked = json.loads((proxy / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/configurable-http-proxy"]["version"] == pinned
    assert "configurable-http-proxy" in (proxy / "build.mk").read_text()

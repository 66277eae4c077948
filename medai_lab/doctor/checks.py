"""Doctor checks of the machine: Python, CPU and memory, /dev/shm, disk, MLflow, key, node/npm."""

from __future__ import annotations

import os
import platform
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from medai_lab.doctor import Check

GIB = 1024**3
LOCK_PYTHON = (3, 11)  # the locks are resolved for this version
SUPPORTED = ((3, 10), (3, 14))  # pyproject's requires-python: >=3.10,<3.14
NODE_MIN = 18  # JupyterLab 4's extension builder


def python_env() -> list[Check]:
    """Python version, the venv, and whether ``medai-lab`` is on PATH."""
    v = sys.version_info[:2]
    where = f"{platform.python_version()} at {sys.executable}"
    where += " (venv)" if sys.prefix != sys.base_prefix else " (no venv)"
    if not SUPPORTED[0] <= v < SUPPORTED[1]:
        py = Check(
            "python",
            "fail",
            where,
            "MedAI Lab needs Python 3.10-3.13: install 3.11, then make install",
        )
    elif v != LOCK_PYTHON:
        py = Check(
            "python",
            "warn",
            where + "; the locks are resolved for 3.11",
            "install Python 3.11 (make install picks python3.11 when it is on PATH)",
        )
    else:
        py = Check("python", "ok", where)
    try:
        version = metadata.version("medai-lab")
    except metadata.PackageNotFoundError:
        version = "not installed (running from source)"
    on_path = shutil.which("medai-lab")
    venv_bin = Path(sys.prefix) / "bin"
    if on_path:
        cli = Check("medai-lab", "ok", f"{version}, command {on_path}")
    else:
        cli = Check(
            "medai-lab",
            "warn",
            f"{version}; the medai-lab command is not on PATH",
            f"source {venv_bin / 'activate'} (or run {venv_bin / 'medai-lab'})",
        )
    return [py, cli]


def cpu_memory() -> list[Check]:
    """The CPU and memory share of this process (affinity, cgroup quota/limit) and what is free."""
    from medai_lab.cpushare import oom_message, summary

    share = summary()
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    total, available = _meminfo()
    mem = f"{available / GIB:.1f} of {total / GIB:.1f} GiB free" if total else "memory unknown"
    limit = share["memory_limit"] or share["memory_hint"]
    if limit:
        kind = "cgroup limit" if share["memory_limit"] else "share, not enforced"
        mem += f"; memory share {limit / GIB:.1f} GiB ({kind})"
        total = min(total, limit) if total else limit
    detail = f"{_cpu_detail(share)}{load}; {mem}"
    if share["oom_kills"]:
        fix = "smaller batches/patches or data.cache=none; or ask for a larger share"
        return [Check("cpu/memory", "warn", f"{detail}; {oom_message(share['oom_kills'], limit)}",
                      fix)]  # fmt: skip
    if total and total < 4 * GIB:
        return [Check("cpu/memory", "warn", detail, "training needs about 4 GiB; close other work")]
    return [Check("cpu/memory", "ok", detail)]


def _cpu_detail(share: dict[str, object]) -> str:
    """``2 CPU(s) for this process (machine 16, quota 2, affinity 4); threads 2``-style text."""
    why = [f"machine {share['machine_cpus']}"]
    if share["affinity"] != share["machine_cpus"]:
        why.append(f"affinity {share['affinity']}")
    if share["cpu_quota"]:
        why.append(f"cgroup quota {float(share['cpu_quota']):g}")  # type: ignore[arg-type]
    if share["env_cpus"]:
        why.append(f"MEDAI_CPUS={share['env_cpus']}")
    omp = f", OMP_NUM_THREADS={share['omp_threads']}" if share["omp_threads"] else ""
    return f"{share['threads']} CPU(s) for this process ({', '.join(why)}{omp})"


def _meminfo() -> tuple[int, int]:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return 0, 0
    values = {m[1]: int(m[2]) * 1024 for m in re.finditer(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return values.get("MemTotal", 0), values.get("MemAvailable", 0)


def shared_memory(path: str = "/dev/shm") -> list[Check]:
    """Size of /dev/shm: DataLoader worker processes hand batches over through it."""
    if sys.platform == "darwin":
        return [Check("/dev/shm", "ok", "not used on macOS")]
    try:
        st = os.statvfs(path)
    except OSError:
        return [Check("/dev/shm", "warn", f"{path} is missing", "mount a tmpfs at /dev/shm")]
    size, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    detail = f"{size / GIB:.2f} GiB ({free / GIB:.2f} GiB free)"
    if size < GIB:
        return [
            Check(
                "/dev/shm",
                "warn",
                detail + ": loader workers (data.num_workers > 0, the gpu "
                "preset) die with 'bus error'",
                "docker run --shm-size=8g (or --ipc=host); Kubernetes: an emptyDir with medium: "
                "Memory at /dev/shm; or data.num_workers=0",
            )
        ]
    return [Check("/dev/shm", "ok", detail)]


def disk_space() -> list[Check]:
    """Free space where the work goes: the working folder, the MLflow store, the temp folder."""
    from medai_lab.tracking.store import ENV_MEDAI_DIR

    places = {
        "working folder": Path.cwd(),
        "MLflow/cache": Path(os.environ.get(ENV_MEDAI_DIR) or Path.home() / ".medai-lab"),
        "temp": Path(os.environ.get("TMPDIR") or "/tmp"),
    }
    seen: dict[int, str] = {}
    out = []
    for what, path in places.items():
        path = _existing(path)
        dev = path.stat().st_dev
        if dev in seen:
            continue
        seen[dev] = what
        free = shutil.disk_usage(path).free
        detail = f"{free / GIB:.1f} GiB free at {path} ({what})"
        fix = "keep 10 GiB free for MSD data, caches and runs"
        status = "fail" if free < GIB else "warn" if free < 10 * GIB else "ok"
        out.append(Check("disk", status, detail, fix if status != "ok" else ""))
    return out


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mlflow_store() -> list[Check]:
    """The tracking store runs go to (medai_lab.tracking's resolution) and whether it answers."""
    from medai_lab.tracking.store import resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri()
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    source = "MLFLOW_TRACKING_URI" if env else "embedded"
    db = sqlite_path(uri)
    if db is not None:
        if not os.access(_existing(db.parent), os.W_OK):
            return [
                Check(
                    "mlflow",
                    "fail",
                    f"{uri} ({source}): folder not writable",
                    "set MEDAI_MLFLOW_DIR to a writable folder",
                )
            ]
        return [Check("mlflow", "ok", f"{uri} ({source}); {_sqlite_runs(db)}")]
    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        return [_http_store(uri)]
    return [Check("mlflow", "ok", f"{uri} ({source}; not contacted)")]


def _sqlite_runs(db: Path) -> str:
    if not db.is_file():
        return "empty (created by the first run)"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5) as con:
            active = "WHERE lifecycle_stage='active'"
            runs = con.execute(f"SELECT count(*) FROM runs {active}").fetchone()
            exps = con.execute(f"SELECT count(*) FROM experiments {active}").fetchone()
        return f"{exps[0]} experiment(s), {runs[0]} run(s)"
    except sqlite3.Error:
        return "no runs yet"


def _http_store(uri: str) -> Check:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=1.0) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        return Check(
            "mlflow",
            "warn",
            f"{uri}: no answer ({exc})",
            "start the tracking server, or unset MLFLOW_TRACKING_URI (embedded store)",
        )
    return Check("mlflow", "ok" if ok else "warn", f"{uri}: server answers")


def deid_key() -> list[Check]:
    """The de-identification project key: there, private (0600), readable as a key."""
    from medai_lab.deid.keys import KEY_ENV, default_key_file

    path = default_key_file()
    if not path.exists():
        return [
            Check(
                "deid key",
                "ok",
                f"none yet at {path}: the first `medai-lab deid` creates it (0600)",
                "back it up once created: without it pseudonyms and dates cannot be reproduced",
            )
        ]
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return [
            Check(
                "deid key",
                "fail",
                f"{path} cannot be read ({type(exc).__name__})",
                f"fix its permissions or point {KEY_ENV} at the right file",
            )
        ]
    if stat.S_IMODE(st.st_mode) & 0o077:
        mode = oct(stat.S_IMODE(st.st_mode))
        return [
            Check(
                "deid key",
                "fail",
                f"{path} is readable by others (mode {mode})",
                f"chmod 600 {path}",
            )
        ]
    if not re.fullmatch(r"[0-9a-fA-F]{32,}", text):
        return [
            Check(
                "deid key",
                "fail",
                f"{path} does not hold a hex key of >= 128 bits",
                f"restore it from your backup (never edit it); {KEY_ENV} picks another",
            )
        ]
    owner = "" if not hasattr(os, "getuid") or st.st_uid == os.getuid() else ", another user's"
    return [Check("deid key", "ok", f"{path} (0600{owner})")]


def node_npm() -> list[Check]:
    """node and npm, needed to build the JupyterLab extension and the viewer from source."""
    import medai_lab

    prebuilt = (Path(medai_lab.__file__).parent / "labextension" / "package.json").is_file()
    found = _versions(["node", "npm"])  # npm alone takes ~0.3 s: both at once
    missing = [t for t, v in found.items() if v is None]
    detail = ", ".join(f"{t} {v or 'missing'}" for t, v in found.items())
    status = "warn" if prebuilt else "fail"
    if missing:
        why = "only to rebuild the lab extension" if prebuilt else "make install builds with them"
        return [
            Check(
                "node/npm",
                status,
                f"{detail} ({why})",
                "install Node.js >= 18 and npm (apt install nodejs npm; brew install node)",
            )
        ]
    major = re.match(r"v?(\d+)", found["node"] or "")
    if major and int(major.group(1)) < NODE_MIN:
        return [Check("node/npm", status, f"{detail}: node < {NODE_MIN}", "install Node.js >= 18")]
    return [Check("node/npm", "ok", detail + ("" if prebuilt else "; lab extension not built yet"))]


def _versions(tools: list[str]) -> dict[str, str | None]:
    """``tool --version`` for each tool, run concurrently; None where missing or failing."""
    procs = {}
    for tool in tools:
        exe = shutil.which(tool)
        try:
            procs[tool] = (
                subprocess.Popen(
                    [exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
                )
                if exe
                else None
            )
        except OSError:
            procs[tool] = None
    out: dict[str, str | None] = {}
    for tool, proc in procs.items():
        out[tool] = None
        if proc is None:
            continue
        try:
            text, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        if proc.returncode == 0 and text.strip():
            out[tool] = text.strip().splitlines()[0]
    return out

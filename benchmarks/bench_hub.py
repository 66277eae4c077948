"""``medai-lab hub``: login to a usable user server for 1 and 10 concurrent users; allocator speed.

A real JupyterHub from the ``medai-lab hub`` configuration (pinned configurable-http-proxy,
NativeAuthenticator, MedaiSpawner with a declared pool of 4 GPUs, no MLflow service, no culler)
on loopback ports in a temporary folder; users sign up before the clock starts. One user's
time runs from the login form POST (NativeAuthenticator, bcrypt) through a token request with
the session cookie, the spawn request (GPU allocation included) and the spawn, to the first
200 from the server's REST API through the proxy (``/user/NAME/api/kernelspecs``) with that
token. ``spawn1`` is the median over ``--repeat`` single logins; ``spawn10`` the time until
the last of 10 users who log in at once has a usable server (4 of them get GPUs, 6 the CPU
profile). Servers are ``jupyterhub-singleuser`` with every installed server extension
(JupyterLab included); ``--light`` runs plain jupyter_server (``JUPYTER_NO_CONFIG=1``).

The allocator's decision time is ``GpuAllocator.allocate`` + ``release`` on its SQLite state
file (WAL, ``BEGIN IMMEDIATE``), pools of 4 and 64 units, median over 500 calls.

Prints ``METRIC`` lines and, last, ``RATIO spawn10_vs_spawn1 <x>`` (time for ten / time for
one; 10 would mean no concurrency at all, 1 perfect overlap).

``--cpu-share``: four hub users training at once on this machine's cores (issue 23). Four
``medai-lab train liver --preset smoke`` runs start together (a) with today's defaults (every
library sizes its thread pools by the machine's cores) and (b) each in the share the hub gives
a server when four users are expected: ``cores/4`` CPUs enforced as the hub enforces it
(``medai_lab.hub.limits``: a cgroup CPU quota where the bench may write cgroups, plus the
server's own core) and the matching thread variables (``share_env``); and (c) one run alone
with the defaults. Every run trains the same samples, so total samples/s is proportional to
runs finished per second. ``RATIO contended_vs_alone <x>`` = total throughput of the four with
shares over one alone (1.0: four users together get as much done as one alone).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quiet import Quiet

from medai_lab.hub import limits
from medai_lab.hub.allocator import GpuAllocator
from medai_lab.hub.inventory import parse_inventory
from medai_lab.hub.policy import Policy
from medai_lab.hub.resources import Share, share_env
from medai_lab.hub.settings import HubSettings, free_port, write_config

PASSWORD = "bench-" + secrets.token_hex(8)


class BenchHub:
    """A hub for the benchmark (stopped with everything it started)."""

    def __init__(self, data: Path, light: bool, gpus: str = "0,1,2,3", **settings: object) -> None:
        self.token = secrets.token_hex(24)
        self.tokens: dict[str, str] = {}  # each user's token from login_to_usable
        env = {"JUPYTER_NO_CONFIG": "1"} if light else {}
        inventory = [d.to_dict() for d in parse_inventory(gpus)]
        fields: dict[str, object] = dict(
            data_dir=str(data), port=free_port(), admins=["admin"], open_signup=True,
            allow_root=os.geteuid() == 0, gpus=gpus, inventory=inventory,
            server_env=env, mlflow=False, cull_timeout=0, log_level="WARN",
        )  # fmt: skip
        self.settings = HubSettings(**{**fields, **settings}).resolve_ports()  # type: ignore[arg-type]
        config = write_config(self.settings)
        with config.open("a") as fh:
            fh.write(
                f"c.JupyterHub.services.append({{'name': 'bench', 'api_token': {self.token!r}}})\n"
                "c.JupyterHub.load_roles.append({'name': 'bench', 'services': ['bench'], "
                "'scopes': ['admin:users', 'admin:servers', 'list:users', 'read:users']})\n"
            )
        log = (data / "hub.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=data, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.url = self.settings.public_url
        end = time.monotonic() + 60
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=5).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit(
            f"the hub did not start in 60 s:\n{(data / 'hub.log').read_text()[-3000:]}"
        )

    def admin(self, method: str, path: str, **kw: object) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kw
        )

    def sign_up(self, name: str) -> None:
        web = requests.Session()
        web.get(f"{self.url}/hub/signup", timeout=30)
        form = {"username": name, "signup_password": PASSWORD, "_xsrf": web.cookies["_xsrf"]}
        form["signup_password_confirmation"] = PASSWORD
        r = web.post(f"{self.url}/hub/signup", data=form, timeout=30)
        assert "signup was successful" in r.text, r.text[-400:]

    def login_to_usable(self, name: str) -> float:
        """Seconds from the login POST to the first 200 from the user's server API."""
        web = requests.Session()
        web.get(f"{self.url}/hub/login", timeout=30)
        xsrf = web.cookies["_xsrf"]
        t0 = time.perf_counter()
        form = {"username": name, "password": PASSWORD, "_xsrf": xsrf}
        r = web.post(f"{self.url}/hub/login", data=form, allow_redirects=False, timeout=60)
        assert r.status_code == 302, r.status_code
        hdr = {"X-XSRFToken": web.cookies.get("_xsrf") or xsrf}
        r = web.post(f"{self.url}/hub/api/users/{name}/tokens", json={}, headers=hdr, timeout=60)
        token = self.tokens[name] = r.json()["token"]
        auth = {"Authorization": f"token {token}"}
        r = requests.post(f"{self.url}/hub/api/users/{name}/server", headers=auth, timeout=60)
        assert r.status_code in (201, 202), r.text
        end = time.monotonic() + 300
        while time.monotonic() < end:
            try:
                r = requests.get(
                    f"{self.url}/user/{name}/api/kernelspecs", headers=auth, timeout=30,
                    allow_redirects=False,
                )  # fmt: skip
                if r.status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{name}'s server was not usable in 300 s")

    def stop_servers(self, names: list[str]) -> None:
        for name in names:
            self.admin("DELETE", f"/users/{name}/server")
        end = time.monotonic() + 120
        while time.monotonic() < end:
            users = self.admin("GET", "/users").json()
            if not any(u["servers"] or u.get("pending") for u in users if u["name"] in names):
                return
            time.sleep(0.3)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def allocator_decision_us(units: int, calls: int = 500) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pool = parse_inventory(",".join(str(i) for i in range(units)))
        alloc = GpuAllocator(pool, Policy(), Path(tmp) / "s.sqlite")
        for i in range(units - 1):  # a nearly full pool: the decision scans the holdings
            alloc.allocate(f"holder{i}")
        times = []
        for i in range(calls):
            t0 = time.perf_counter()
            alloc.allocate(f"u{i}")
            alloc.release(f"u{i}")
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6


TRAIN = ["train", "liver", "--preset", "smoke", "--no-track", "--no-export", "--no-progress"]
_THREAD_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MEDAI_CPUS",
                "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS", "VECLIB_MAXIMUM_THREADS")  # fmt: skip


def train_together(root: Path, n: int, share: Share | None) -> float:
    """Wall seconds until ``n`` smoke trainings started at once have all finished."""
    exe = str(Path(sys.executable).parent / "medai-lab")
    base = {k: v for k, v in os.environ.items() if k not in _THREAD_KEYS}
    backend = limits.detect("auto") if share else "none"
    procs, placements = [], []
    t0 = time.perf_counter()
    for i in range(n):
        work = root / f"{'share' if share else 'default'}{n}-{i}"
        work.mkdir(parents=True)
        env, preexec = dict(base), None
        if share:
            placement = limits.place(f"bench-{os.getpid()}-{i}", share, backend)
            placements.append(placement)
            env.update(share_env(share.cpus, None))
            preexec = limits.child_setup(placement)
        log = (work / "train.log").open("wb")
        procs.append(subprocess.Popen([exe, *TRAIN, "--out", str(work / "runs")], cwd=work,
                                      env=env, stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=preexec))  # fmt: skip
        log.close()
    try:
        codes = [p.wait(1800) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for placement in placements:
            limits.release(placement)
    wall = time.perf_counter() - t0
    if any(codes):
        bad = next(i for i, c in enumerate(codes) if c)
        tail = (root / f"{'share' if share else 'default'}{n}-{bad}" / "train.log").read_text()
        raise SystemExit(f"a training run failed ({codes}):\n{tail[-2000:]}")
    return wall


def cpu_share_bench() -> int:
    """Four smoke trainings at once: defaults vs hub shares vs one alone (see the docstring)."""
    cores = len(os.sched_getaffinity(0))
    share = Share(round(cores / 4, 2), 0)
    quiet = Quiet(limit=0.15, budget_s=60)
    with tempfile.TemporaryDirectory(prefix="bench-hub-cpu-") as tmp:
        quiet.wait()
        alone = train_together(Path(tmp), 1, None)
        quiet.wait()
        default4 = train_together(Path(tmp), 4, None)
        quiet.wait()
        shared4 = train_together(Path(tmp), 4, share)
    backend = limits.detect("auto")
    print(f"METRIC cores {cores}; share per run {share.cpus:g} CPU, {share.threads} thread(s), "
          f"enforced by {backend} + own core; waited for quiet {quiet.waited_s:.0f} s")  # fmt: skip
    print(f"METRIC alone_s {alone:.1f} (1 run, defaults: {cores} threads)")
    print(f"METRIC four_default_s {default4:.1f} (throughput x{4 * alone / default4:.2f} of alone)")
    print(f"METRIC four_shares_s {shared4:.1f} (throughput x{4 * alone / shared4:.2f} of alone)")
    print(f"METRIC shares_vs_default {default4 / shared4:.3f}")
    print(f"RATIO contended_vs_alone {4 * alone / shared4:.3f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="single-user logins (median)")
    ap.add_argument("--concurrent", type=int, default=10)
    ap.add_argument("--light", action="store_true", help="plain jupyter_server (no extensions)")
    ap.add_argument("--cpu-share", action="store_true", help="four trainings at once (issue 23)")
    args = ap.parse_args()
    if args.cpu_share:
        return cpu_share_bench()
    quiet = Quiet(limit=0.15, budget_s=20)
    for units in (4, 64):
        print(f"METRIC allocator_decision_us_{units}_units {allocator_decision_us(units):.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        hub = BenchHub(Path(tmp), args.light)
        try:
            names = [f"user{i:02d}" for i in range(args.concurrent)]
            for name in names:
                hub.sign_up(name)
            singles = []
            for _ in range(args.repeat):
                quiet.wait()
                singles.append(hub.login_to_usable(names[0]))
                hub.stop_servers(names[:1])
            spawn1 = statistics.median(singles)
            quiet.wait()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(len(names)) as pool:
                each = list(pool.map(hub.login_to_usable, names))
            spawn10 = time.perf_counter() - t0
            gpus = hub.admin("GET", "/users").json()
            hub.stop_servers(names)
        finally:
            hub.close()
    kind = "light" if args.light else "full"
    print(f"METRIC servers {kind} (jupyterhub-singleuser{' JUPYTER_NO_CONFIG' * args.light})")
    print(f"METRIC spawn1_s {spawn1:.2f} (runs: {', '.join(f'{t:.2f}' for t in singles)})")
    print(
        f"METRIC spawn{len(names)}_s {spawn10:.2f} (per user median {statistics.median(each):.2f})"
    )
    print(f"METRIC users_listed {len(gpus)}; waited for quiet {quiet.waited_s:.1f} s")
    print(f"RATIO spawn10_vs_spawn1 {spawn10 / spawn1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

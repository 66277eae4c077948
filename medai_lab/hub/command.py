"""``medai-lab hub``: a JupyterHub for one server (workshops, small labs).

Writes ``DATA/medai_hub.json`` + ``DATA/jupyterhub_config.py``, checks that the servers' account
(``--run-as``) can run a server, and replaces itself with ``python -m medai_lab.hub.app -f
DATA/jupyterhub_config.py`` (JupyterHub with a clean shutdown; signals reach it directly).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError


def _quota(text: str) -> tuple[str, int]:
    group, sep, n = text.partition("=")
    if not sep or not group or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected GROUP=N, got {text!r}")
    return group, int(n)


def _group_value(text: str) -> tuple[str, str]:
    group, sep, value = text.partition("=")
    if not sep or not group or not value:
        raise argparse.ArgumentTypeError(f"expected GROUP=VALUE, got {text!r}")
    return group, value


def _add_share_flags(p: Any) -> None:
    """CPU/memory share flags (see medai_lab.hub.resources), next to the GPU ones."""
    g = p.add_argument_group(
        "CPU and memory per server",
        "Default: the machine split evenly between --expected-users servers; enforced with "
        "cgroups where the hub may (root, or a systemd unit with Delegate=yes), else by CPU "
        "affinity; kernels get matching OMP/MKL/OpenBLAS/numexpr/torch thread counts.",
    )
    g.add_argument("--expected-users", type=int, default=0, metavar="N",
                   help="servers at once the defaults are sized for (default: the GPU units "
                   "of the pool, or 4)")  # fmt: skip
    g.add_argument("--cpus-per-server", type=float, default=None, metavar="X",
                   help="CPUs of one server (0.5 = half a core; 0: no CPU limit)")  # fmt: skip
    g.add_argument("--mem-per-server", default=None, metavar="SIZE",
                   help="memory of one server, e.g. 4G (0: no memory limit)")  # fmt: skip
    g.add_argument("--max-cpus-per-user", type=float, default=0, metavar="X")
    g.add_argument("--max-mem-per-user", default="0", metavar="SIZE")
    g.add_argument("--group-cpus", type=_group_value, action="append", default=[],
                   metavar="GROUP=X", help="CPUs per server for members of GROUP")  # fmt: skip
    g.add_argument("--group-mem", type=_group_value, action="append", default=[],
                   metavar="GROUP=SIZE", help="memory per server for members of GROUP")  # fmt: skip
    g.add_argument("--limits", default="auto",
                   choices=["auto", "cgroup2", "cgroup1", "affinity", "none"],
                   help="how shares are enforced (auto: the best this machine allows)")  # fmt: skip
    g.add_argument("--no-pin", action="store_true", help="do not give servers their own cores")
    g.add_argument(
        "--print-kube-override",
        action="store_true",
        help="print the share as a Zero to JupyterHub profile's kubespawner_override (YAML: "
        "requests, limits, thread variables) and exit",
    )


def resource_policy(args: argparse.Namespace, gpu_units: int) -> Any:
    """The :class:`ResourcePolicy` for parsed arguments (machine-derived defaults)."""
    from medai_lab.hub.resources import ResourceError, ResourcePolicy, default_policy, parse_size

    try:
        users = args.expected_users or gpu_units or 4
        base = default_policy(users)
        cpus = base.cpus_per_server if args.cpus_per_server is None else args.cpus_per_server
        mem = base.memory_per_server
        if args.mem_per_server is not None:
            mem = parse_size(args.mem_per_server)
        return ResourcePolicy(
            cpus_per_server=float(cpus),
            memory_per_server=int(mem),
            max_cpus_per_user=float(args.max_cpus_per_user),
            max_memory_per_user=parse_size(args.max_mem_per_user),
            group_cpus={g: float(v) for g, v in args.group_cpus},
            group_memory={g: parse_size(v) for g, v in args.group_mem},
            pin=not args.no_pin,
        )
    except (ResourceError, ValueError) as exc:
        raise MedaiError(f"CPU/memory share: {exc}") from None


def add_parser(sub: Any) -> None:
    """Register ``hub`` on the main parser's subparsers."""
    p = sub.add_parser(
        "hub",
        help="a JupyterHub for one server: GPU sharing, MLflow service, idle culling",
        description="Start a JupyterHub for a workshop or a small lab on this machine.",
    )
    p.add_argument("--port", type=int, default=8000, help="public port (default 8000)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (0.0.0.0: the room)")
    p.add_argument("--data", default="medai-hub", help="hub state folder (default ./medai-hub)")
    p.add_argument(
        "--gpus",
        default="auto",
        help="GPU pool: auto (NVML), auto:N (N shares per GPU), none, or a declared list "
        "such as '0,1', 'MIG-<uuid>,MIG-<uuid>', '0:4' (GPU 0 in 4 shares), '0:2@0.4'",
    )
    p.add_argument("--gpus-per-server", type=int, default=1, metavar="N")
    p.add_argument("--max-gpus-per-user", type=int, default=None, metavar="N")
    p.add_argument(
        "--group-quota",
        type=_quota,
        action="append",
        default=[],
        metavar="GROUP=N",
        help="at most N GPU units held by members of GROUP at once ('*': users in no group)",
    )
    _add_share_flags(p)
    p.add_argument("--admin", action="extend", nargs="+", default=[], metavar="USER")
    p.add_argument("--authenticator", choices=["native", "pam"], default="native")
    p.add_argument("--open-signup", action="store_true", help="sign-ups need no admin approval")
    p.add_argument(
        "--isolation",
        choices=["shared", "system"],
        default="shared",
        help="shared: users need no Unix account, all servers run as one account (workshops); "
        "system: each hub user is a Unix user (use with --authenticator pam)",
    )
    p.add_argument(
        "--run-as",
        default="",
        metavar="ACCOUNT",
        help="hub started as root: run every server as this unprivileged account (checked at "
        "start-up: it must be able to run this environment's Python and reach --data)",
    )
    p.add_argument(
        "--allow-root",
        action="store_true",
        help="hub started as root, no --run-as: servers run as root too, so every hub user is "
        "root on this machine (a throw-away container or VM whose users you trust with root)",
    )
    p.add_argument("--postgres", default="", metavar="URL", help="MLflow store on PostgreSQL")
    p.add_argument("--artifacts", default="", metavar="DIR", help="MLflow artifacts (shared disk)")
    p.add_argument("--no-mlflow", action="store_true", help="no MLflow service")
    p.add_argument("--cull-timeout", type=int, default=3600, metavar="S", help="0: no culling")
    p.add_argument("--cull-every", type=int, default=300, metavar="S")
    p.add_argument("--pacs", action="store_true", help="a workshop PACS at /services/pacs")
    p.add_argument(
        "--challenge",
        default="",
        metavar="DIR",
        help="hackathon: serve /services/challenge (hub users submit from the Lab or with "
        "`medai-lab challenge submit --hub URL`), make DIR readable only by the hub's account, "
        "and run the evaluator",
    )
    p.add_argument(
        "--challenge-workers",
        type=int,
        default=1,
        metavar="N",
        help="submissions scored at once by the hub's evaluator (0: run `medai-lab challenge "
        "evaluate` yourself)",
    )
    p.add_argument("--server-cmd", default="", help="single-user command (default: singleuser)")
    p.add_argument("--default-url", default="/lab")
    p.add_argument("--log-level", default="INFO")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="write the config and run the start-up checks (--run-as), do not start",
    )
    p.add_argument(
        "--export-usage",
        metavar="CSV",
        help="write sessions, server-hours and GPU-hours per user and exit",
    )
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`HubSettings` for parsed arguments (inventory resolved, ports chosen)."""
    from medai_lab.hub.inventory import parse_inventory
    from medai_lab.hub.limits import detect
    from medai_lab.hub.policy import Policy
    from medai_lab.hub.resources import ResourceError
    from medai_lab.hub.settings import HubSettings

    per_server = args.gpus_per_server
    policy = Policy(per_server, args.max_gpus_per_user or per_server, dict(args.group_quota))
    inventory = [d.to_dict() for d in parse_inventory(args.gpus)]
    resources = resource_policy(args, len(inventory))
    try:
        limits = detect(args.limits) if resources.active else args.limits
    except ResourceError as exc:
        raise MedaiError(str(exc)) from None
    settings = HubSettings(
        data_dir=str(Path(args.data).resolve()),
        ip=args.ip,
        port=args.port,
        admins=list(args.admin),
        authenticator=args.authenticator,
        open_signup=args.open_signup,
        isolation=args.isolation,
        run_as=args.run_as,
        allow_root=args.allow_root,
        gpus=args.gpus,
        inventory=inventory,
        policy=policy.to_dict(),
        resources=resources.to_dict(),
        limits=limits,
        mlflow=not args.no_mlflow,
        postgres=args.postgres,
        artifacts_dir=args.artifacts,
        cull_timeout=args.cull_timeout,
        cull_every=args.cull_every,
        pacs=args.pacs,
        challenge_dir=str(Path(args.challenge).resolve()) if args.challenge else "",
        challenge_workers=args.challenge_workers,
        server_cmd=shlex.split(args.server_cmd),
        default_url=args.default_url,
        log_level=args.log_level,
    )
    return settings.resolve_ports()


def _check(settings: Any) -> list[str]:
    """Refuse what cannot work; return warnings for what is risky."""
    from medai_lab.hub.config import proxy_command

    proxy = proxy_command(settings)[0]
    if not (Path(proxy).exists() or shutil.which(proxy)):
        raise MedaiError(
            "configurable-http-proxy is not installed: run `make install` (or "
            "`npm ci --prefix medai_lab/hub/proxy`)"
        )
    root_shared = os.geteuid() == 0 and settings.isolation == "shared"
    if root_shared and not settings.run_as and not settings.allow_root:
        raise MedaiError(
            "running as root: give --run-as ACCOUNT (an unprivileged account for the servers; "
            "`useradd --system --no-create-home --shell /usr/sbin/nologin medai` makes one), "
            "run the hub as an ordinary user, or --allow-root if every hub user may be root here"
        )
    if settings.challenge_dir:  # one clear line now, not a service that keeps restarting
        from medai_lab.challenge.api import Challenge

        Challenge.open(settings.challenge_dir)
    warnings = []
    if settings.challenge_dir and settings.isolation == "shared" and not settings.run_as:
        warnings.append(
            "--challenge: the servers run as the hub's own account, so participants can read "
            "the challenge folder; start the hub as root with --run-as ACCOUNT (or use "
            "--isolation system) to keep it to the evaluator"
        )
    if settings.run_as and settings.isolation == "shared":
        _check_account(settings)
    elif root_shared:
        warnings.append("--allow-root: servers run as root, every hub user is root on this machine")
    if settings.ip not in ("127.0.0.1", "localhost", "::1"):
        warnings.append(f"listening on {settings.ip} over plain HTTP: put TLS in front")
        if settings.open_signup:
            warnings.append("open sign-up on a network address: anyone who reaches it can join")
    if settings.authenticator == "native" and not settings.admins and not settings.open_signup:
        warnings.append("no --admin: nobody can approve sign-ups")
    if not settings.inventory:
        warnings.append("no GPUs in the pool: every server gets the CPU profile")
    return warnings


def _check_account(settings: Any) -> None:
    """Refuse to start when the ``--run-as`` account cannot run a server (one line per fix)."""
    from medai_lab.hub.config import server_cmd
    from medai_lab.hub.preflight import account_problems, hub_needs

    custom = server_cmd(settings) if settings.server_cmd else ()
    problems = account_problems(settings.run_as, hub_needs(settings.data, custom))
    if problems:
        lines = "".join(f"\n  - {p.message}" for p in problems)
        raise MedaiError(
            f"the servers' account {settings.run_as!r} cannot run a server; change this "
            f"and start again:{lines}"
        )


def run(args: argparse.Namespace) -> int:
    """Export usage, or write the configuration and exec JupyterHub."""
    if args.export_usage:
        from medai_lab.hub.accounting import write_usage_csv

        state = Path(args.data).resolve() / "gpu-state.sqlite"
        if not state.exists():
            raise MedaiError(f"no GPU state at {state}: is --data the hub's folder?")
        rows = write_usage_csv(state, args.export_usage)
        print(f"wrote the usage of {len(rows)} user(s) to {args.export_usage}")
        return 0
    if args.print_kube_override:
        return _print_kube_override(args)
    from medai_lab.hub.inventory import describe
    from medai_lab.hub.settings import write_config

    settings = settings_from_args(args)
    for line in _check(settings):
        print(f"medai-lab hub: warning: {line}", file=sys.stderr)
    config = write_config(settings)
    command = [sys.executable, "-m", "medai_lab.hub.app", "-f", str(config)]
    print(f"GPU pool: {describe([_dev(d) for d in settings.inventory])}")
    print(f"CPU/memory: {_describe_share(settings)}")
    print(f"hub: {settings.public_url}  (config {config})")
    if settings.mlflow:
        print(f"MLflow: {settings.mlflow_uri}  (store {_redact(settings.mlflow_store)})")
    if settings.challenge_dir:
        print(f"challenge: {settings.public_url}/services/challenge  ({settings.challenge_dir})")
    if args.print_config:
        print(" ".join(shlex.quote(c) for c in command))
        return 0
    sys.stdout.flush()
    os.chdir(settings.data)
    os.execv(command[0], command)
    return 0  # not reached


def _print_kube_override(args: argparse.Namespace) -> int:
    import yaml

    from medai_lab.hub.resources import Share, kube_override

    policy = resource_policy(args, 0)
    override = kube_override(Share(policy.cpus_per_server, policy.memory_per_server))
    print(yaml.safe_dump({"kubespawner_override": override}, sort_keys=False), end="")
    return 0


def _describe_share(settings: Any) -> str:
    from medai_lab.hub.resources import ResourcePolicy, Share

    policy = ResourcePolicy.from_dict(settings.resources)
    if not policy.active:
        return "no limits (every server may use the whole machine)"
    share = Share(policy.cpus_per_server, policy.memory_per_server)
    how = {
        "affinity": "CPU affinity + thread counts; memory not enforced",
        "none": "thread counts only (cooperative)",
    }.get(settings.limits, settings.limits)
    return f"{share.describe()} per server, enforced by {how}"


def _dev(d: dict[str, Any]) -> Any:
    from medai_lab.hub.inventory import GpuDevice

    return GpuDevice.from_dict(d)


def _redact(url: str) -> str:
    """A database URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url

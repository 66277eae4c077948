"""What ``medai-lab hub`` was asked for, as one JSON file in the hub's data folder.

The generated ``jupyterhub_config.py`` only loads this file and calls
:func:`medai_lab.hub.config.apply`, so the hub, its restarts and an instructor's own
additions to that config file all see the same settings.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SETTINGS_NAME = "medai_hub.json"
CONFIG_NAME = "jupyterhub_config.py"


@dataclass
class HubSettings:
    """Everything the hub config is generated from (JSON round-trip: :meth:`save`, :meth:`load`).

    Ports left at 0 are chosen (free loopback ports) by :meth:`resolve_ports`.
    """

    data_dir: str = "medai-hub"
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_port: int = 0
    proxy_api_port: int = 0
    admins: list[str] = field(default_factory=list)
    authenticator: str = "native"  # native | pam
    open_signup: bool = False
    isolation: str = "shared"  # shared | system
    run_as: str = ""
    allow_root: bool = False
    gpus: str = "auto"
    inventory: list[dict[str, Any]] = field(default_factory=list)  # resolved at launch
    policy: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)  # ResourcePolicy.to_dict(); {}: none
    limits: str = "auto"  # how shares are enforced: auto | cgroup2 | cgroup1 | affinity | none
    mlflow: bool = True
    postgres: str = ""
    artifacts_dir: str = ""
    mlflow_port: int = 0
    mlflow_service_port: int = 0
    cull_timeout: int = 3600
    cull_every: int = 300
    cull_max_age: int = 0
    pacs: bool = False
    pacs_http_port: int = 0
    pacs_service_port: int = 0
    challenge_dir: str = ""
    challenge_workers: int = 1  # evaluator sandboxes at once; 0: the organiser runs the evaluator
    challenge_service_port: int = 0
    server_cmd: list[str] = field(default_factory=list)
    server_env: dict[str, str] = field(default_factory=dict)
    default_url: str = "/lab"
    start_timeout: int = 120
    proxy_command: list[str] = field(default_factory=list)
    hub_db_url: str = ""
    log_level: str = "INFO"

    @property
    def data(self) -> Path:
        """The data folder, absolute."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def public_url(self) -> str:
        """Where users (and kernels on this machine) reach the hub."""
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0", "::") else self.ip
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def mlflow_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` of the hub's MLflow service (through the hub proxy)."""
        return f"{self.public_url}/services/mlflow"

    @property
    def mlflow_store(self) -> str:
        """The MLflow backend store: PostgreSQL when given, else SQLite in the data folder.

        A plain ``postgresql://`` URL is pinned to the psycopg2 driver (SQLAlchemy 2.1 would
        pick psycopg 3, which the lock does not carry).
        """
        if not self.postgres:
            return f"sqlite:///{self.data / 'mlflow' / 'mlflow.db'}"
        scheme, sep, rest = self.postgres.partition("://")
        if sep and scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg2://{rest}"
        return self.postgres

    @property
    def artifacts(self) -> Path:
        """Folder of MLflow artifacts (shared disk)."""
        return (
            Path(self.artifacts_dir).expanduser().resolve()
            if self.artifacts_dir
            else (self.data / "mlflow" / "artifacts")
        )

    def resolve_ports(self) -> HubSettings:
        """Give every port still at 0 a free loopback port (in place; returns self)."""
        for name in (
            "hub_port",
            "proxy_api_port",
            "mlflow_port",
            "mlflow_service_port",
            "pacs_http_port",
            "pacs_service_port",
            "challenge_service_port",
        ):
            if not getattr(self, name):
                setattr(self, name, free_port())
        return self

    def save(self, path: str | Path | None = None) -> Path:
        """Write the settings as JSON (default ``DATA/medai_hub.json``)."""
        out = Path(path) if path else self.data / SETTINGS_NAME
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> HubSettings:
        """Read settings saved by :meth:`save` (unknown keys are ignored)."""
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(settings: HubSettings) -> Path:
    """Write ``DATA/medai_hub.json`` and the ``DATA/jupyterhub_config.py`` that applies it."""
    settings_path = settings.save()
    config = settings.data / CONFIG_NAME
    config.write_text(
        "# Generated by `medai-lab hub`; the settings live in medai_hub.json next to this file.\n"
        "# Lines you add below the apply() call override what it set.\n"
        "from medai_lab.hub.config import apply\n"
        "from medai_lab.hub.settings import HubSettings\n\n"
        f"apply(c, HubSettings.load({str(settings_path)!r}))  # noqa: F821\n"
    )
    return config

"""Turn :class:`HubSettings` into JupyterHub configuration (``apply(c, settings)``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from medai_lab.hub.services import (
    access_scopes,
    culler_service,
    evaluator_service,
    mlflow_service,
    pacs_service,
)
from medai_lab.hub.settings import HubSettings

PROXY_BIN = Path(__file__).parent / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"

OPTIONS_FORM = """
<label><input type="radio" name="profile" value="gpu" checked> GPU (when one is free)</label><br>
<label><input type="radio" name="profile" value="cpu"> CPU only</label>
"""


def proxy_command(settings: HubSettings) -> list[str]:
    """configurable-http-proxy: the settings' command, the pinned npm copy, or PATH."""
    if settings.proxy_command:
        return list(settings.proxy_command)
    return [str(PROXY_BIN)] if PROXY_BIN.exists() else ["configurable-http-proxy"]


def server_cmd(settings: HubSettings) -> list[str]:
    """The single-user server command (``jupyterhub-singleuser`` of this environment)."""
    if settings.server_cmd:
        return list(settings.server_cmd)
    exe = Path(sys.executable).parent / "jupyterhub-singleuser"
    return [str(exe)] if exe.exists() else ["jupyterhub-singleuser"]


def _authenticator(c: Any, s: HubSettings) -> None:
    c.Authenticator.admin_users = set(s.admins)
    if s.authenticator == "pam":
        c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
        c.Authenticator.allow_all = True
        return
    import nativeauthenticator

    c.JupyterHub.authenticator_class = "medai_lab.hub.auth.MedaiNativeAuthenticator"
    c.JupyterHub.template_paths = [str(Path(nativeauthenticator.__file__).parent / "templates")]
    c.NativeAuthenticator.open_signup = s.open_signup
    c.NativeAuthenticator.minimum_password_length = 8
    c.NativeAuthenticator.check_common_password = True
    # Sign-in is gated by NativeAuthenticator's own approval (admins, or open sign-up).
    c.NativeAuthenticator.allow_all = True


def _spawner(c: Any, s: HubSettings) -> None:
    from medai_lab.hub.spawner import get_allocator

    c.JupyterHub.spawner_class = "medai_lab.hub.spawner.MedaiSpawner"
    c.MedaiSpawner.gpu_inventory = json.dumps(s.inventory)
    c.MedaiSpawner.gpu_state_path = str(s.data / "gpu-state.sqlite")
    c.MedaiSpawner.gpu_policy = dict(s.policy)
    c.MedaiSpawner.resource_policy = dict(s.resources)
    c.MedaiSpawner.limits_backend = s.limits
    c.MedaiSpawner.isolation = s.isolation
    c.MedaiSpawner.home_dir_template = str(s.data / "homes" / "{username}")
    c.MedaiSpawner.run_as = s.run_as
    c.MedaiSpawner.allow_root = s.allow_root
    c.Spawner.cmd = server_cmd(s)
    c.Spawner.default_url = s.default_url
    c.Spawner.start_timeout = s.start_timeout
    c.Spawner.http_timeout = s.start_timeout
    c.Spawner.environment = dict(s.server_env)
    if s.inventory:
        c.Spawner.options_form = OPTIONS_FORM
    if s.mlflow:
        c.MedaiSpawner.mlflow_tracking_uri = s.mlflow_uri
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        *access_scopes(s),
    ]
    # A hub that starts again frees the GPUs of servers that died while it was down.
    allocator = get_allocator(
        c.MedaiSpawner.gpu_inventory, c.MedaiSpawner.gpu_state_path, c.MedaiSpawner.gpu_policy
    )
    allocator.reconcile()


def _services(c: Any, s: HubSettings) -> None:
    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = [{"name": "user", "scopes": ["self", *access_scopes(s)]}]
    if s.mlflow:
        services.append(mlflow_service(s))
    if s.cull_timeout > 0:
        service, role = culler_service(s)
        services.append(service)
        roles.append(role)
    if s.pacs:
        services.append(pacs_service(s))
    if s.challenge_dir:
        services.append(evaluator_service(s))
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def apply(c: Any, s: HubSettings) -> None:
    """Set the whole hub configuration on ``c`` (the ``jupyterhub_config.py`` config object).

    Parameters
    ----------
    c
        JupyterHub's config object.
    s
        The settings (see :mod:`medai_lab.hub.settings`); ports must be resolved.
    """
    data = s.data
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o711 if s.run_as else 0o700)  # run_as servers only traverse to homes/
    if s.run_as:  # made here, not by the first spawn under a strict umask (0700: unreachable)
        (data / "homes").mkdir(exist_ok=True)
        os.chmod(data / "homes", 0o711)
    c.JupyterHub.bind_url = f"http://{s.ip}:{s.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.hub_port}"
    c.JupyterHub.db_url = s.hub_db_url or f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.log_level = s.log_level
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = proxy_command(s)
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")
    _authenticator(c, s)
    _spawner(c, s)
    _services(c, s)

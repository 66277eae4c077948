"""jupyter_server extension: REST handlers under ``{base_url}medai-lab/api/``.

Enabled by ``jupyter-config/jupyter_server_config.d/medai_lab.json`` (installed to
``etc/jupyter/jupyter_server_config.d/``). Handlers: ``templates``, ``gpus``, ``volume``; see
``docs/lab-api.md``. Importing this package only imports the handler module (tornado and
jupyter_server are already loaded in a server); NVML, NumPy and the DICOM stack load on use.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "medai_lab.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the handlers on the server's web app."""
    from medai_lab.server.handlers import handlers

    base_url = serverapp.web_app.settings.get("base_url", "/")
    serverapp.web_app.add_handlers(".*$", handlers(base_url))
    serverapp.log.info("MedAI Lab server extension loaded: %smedai-lab/api/", base_url)


# jupyter_server < 2 name
load_jupyter_server_extension = _load_jupyter_server_extension

"""The hackathon from JupyterLab: ``{base_url}medai-lab/api/challenge/...`` forwards to the hub.

The Lab panel calls these; they call the hub's challenge service
(:mod:`medai_lab.challenge.service`) with this server's own ``JUPYTERHUB_API_TOKEN``, so the
browser never holds a token and the participant never needs the challenge folder.

``GET info`` / ``GET submissions`` / ``GET leaderboard?phase=`` / ``POST submissions``
``{"path": <relative to the server root>, "phase"?, "format"?}``.

The service is found at ``$MEDAI_CHALLENGE_URL``, else under ``$JUPYTERHUB_PUBLIC_HUB_URL``,
else at ``/services/challenge`` of the address the browser reached this server by (the hub's
proxy). Outside a hub every call answers 409 with the way to submit there instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from medai_lab.server.handlers import _Base

NOT_ON_HUB = (
    "this server does not run under a JupyterHub with a challenge service; on the machine "
    "that holds the challenge, use `medai-lab challenge submit DIR PATH`"
)


class _Forward(_Base):
    auth_resource = "contents"

    def service(self) -> Any:
        from medai_lab.challenge.service.client import Client, service_url

        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not token or not os.environ.get("JUPYTERHUB_USER"):
            raise web.HTTPError(409, NOT_ON_HUB)
        url = os.environ.get("MEDAI_CHALLENGE_URL") or os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL")
        if not url:
            h = self.request.headers
            proto = h.get("X-Forwarded-Proto", self.request.protocol).split(",")[0].strip()
            base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
            url = f"{proto}://{self.request.host}{base.rstrip('/')}"
        return Client(service_url(url), token)

    async def forward(self, call: Callable[[Any], Any], status: int = 200) -> None:
        from medai_lab.challenge.errors import ChallengeError
        from medai_lab.challenge.service.client import ServiceError

        client = self.service()
        try:
            body = await asyncio.to_thread(call, client)
        except ServiceError as exc:
            # the service refusing this server's own token is the hub's problem, not a login
            code = 502 if exc.status in (0, 401) else exc.status
            raise web.HTTPError(code, str(exc)) from None
        except ChallengeError as exc:  # e.g. a model file without its sidecar
            raise web.HTTPError(400, str(exc)) from None
        self.set_header("Cache-Control", "no-store")
        self.reply(body, status)


class InfoHandler(_Forward):
    """GET: the challenge (name, phases, limits) and this user's team."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.forward(lambda c: {**c.info(), "service": c.url})


class SubmissionsHandler(_Forward):
    """GET: this team's submissions. POST ``{"path", "phase"?, "format"?}``: submit a file."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        phase = self.get_query_argument("phase", None)
        await self.forward(lambda c: c.status(phase))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.get_json_body()  # jupyter_server's: 400 on a body that is not JSON
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise web.HTTPError(400, 'body must be {"path": ..., "phase": ..., "format": ...}')
        opts = {k: body.get(k) for k in ("phase", "format")}
        if any(v is not None and not isinstance(v, str) for v in opts.values()):
            raise web.HTTPError(400, "phase and format must be strings")
        path = self.confine(body["path"])
        await self.forward(
            lambda c: c.submit(path, phase=opts["phase"] or None, fmt=opts["format"] or None), 201
        )


class LeaderboardHandler(_Forward):
    """GET ``?phase=``: the phase's ranked table."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        phase = self.get_query_argument("phase", None)
        await self.forward(lambda c: c.leaderboard(phase))


def challenge_handlers(api: str) -> list[tuple[str, type[_Base]]]:
    """(URL pattern, handler) pairs under the extension's ``api`` URL."""
    return [
        (f"{api}/challenge/info", InfoHandler),
        (f"{api}/challenge/submissions", SubmissionsHandler),
        (f"{api}/challenge/leaderboard", LeaderboardHandler),
    ]

"""The challenge service's web application: hub-authenticated submit, status and leaderboard.

Routes under the service prefix (``/services/challenge/``), JSON in and out:

``GET api/info``
    Challenge name, phases (hidden?, formats, submissions per day) and the caller's team.
``POST api/submissions?phase=&format=&entry=``
    Body: a zip archive (:mod:`.archive`), at most the spec's ``submission_mb`` (+10 %);
    streamed to a private temporary file, renamed when complete, unpacked, then
    :meth:`Challenge.submit` with ``team`` = the hub user. 201 and the team's view of the row.
``GET api/submissions[?phase=]`` / ``GET api/submissions/<id>``
    The caller's own submissions only.
``GET api/leaderboard?phase=``
    The ranked table teams may see (hidden phases: per their feedback settings).

Callers send a JupyterHub token (``Authorization: token|Bearer ...``) with the scope
``access:services!service=<this service>``; users get it through their role, their servers'
tokens through ``server_token_scopes``. Anonymous or unknown tokens: 401; hub services and
tokens without the scope: 403. Errors are one line: ``{"message": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medai_lab.challenge.api import Challenge, resolve_team
from medai_lab.challenge.errors import ChallengeError, QuotaError
from medai_lab.challenge.service import archive, views


def upload_cap(ch: Challenge) -> int:
    """Most bytes a submission upload to ``ch`` may have."""
    return archive.upload_cap(ch.spec.limits.submission_mb)


def make_app(ch: Challenge, prefix: str, incoming: Path | None = None) -> Any:
    """The tornado application of the service at ``prefix`` (the hub's service prefix)."""
    from jupyterhub.services.auth import HubAuth
    from tornado import web
    from tornado.http1connection import HTTP1Connection

    auth = HubAuth.instance()  # reads the service's JUPYTERHUB_* environment
    prefix = "/" + prefix.strip("/")
    base = "" if prefix == "/" else prefix

    class Base(web.RequestHandler):
        team = ""

        async def prepare(self) -> None:
            model = await auth.get_user(self, sync=False)
            if model is None:
                self.set_header("WWW-Authenticate", 'Bearer realm="jupyterhub"')
                return self.fail(401, "send your JupyterHub token (JUPYTERHUB_API_TOKEN)")
            if model.get("kind", "user") != "user":
                return self.fail(403, "only hub users are teams")
            if auth.access_scopes and not auth.check_scopes(auth.access_scopes, model):
                return self.fail(403, f"{model.get('name')} may not use this service")
            try:
                self.team = resolve_team(str(model["name"]))
            except ChallengeError as exc:
                return self.fail(403, str(exc))

        def fail(self, status: int, message: str) -> None:
            # Answered before an upload's body is read: tornado closes the connection, so the
            # hub's proxy must not reuse it.
            self.set_header("Connection", "close")
            self.reply({"message": message}, status)

        def reply(self, body: Any, status: int = 200) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.set_header("Cache-Control", "no-store")
            self.finish(json.dumps(body))

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            exc = kwargs.get("exc_info", (None, None))[1]
            message = exc.log_message if isinstance(exc, web.HTTPError) else None
            self.reply({"message": message or self._reason}, status_code)

        async def call(self, fn: Any, *args: Any) -> Any:
            """``fn(*args)`` in a thread; challenge errors become one-line HTTP errors."""
            try:
                return await asyncio.to_thread(fn, *args)
            except QuotaError as exc:
                raise web.HTTPError(429, str(exc)) from None
            except LookupError as exc:
                raise web.HTTPError(404, str(exc)) from None
            except ChallengeError as exc:
                raise web.HTTPError(400, str(exc)) from None

    class Info(Base):
        async def get(self) -> None:
            self.reply(views.info(ch, self.team))

    class One(Base):
        async def get(self, sid: str) -> None:
            self.reply(await self.call(views.one, ch, self.team, int(sid)))

    class Board(Base):
        async def get(self) -> None:
            phase = self.get_query_argument("phase", None)
            self.reply(await self.call(views.leaderboard, ch, phase))

    @web.stream_request_body
    class Submissions(Base):
        _folder: Path | None = None
        _out: Any = None

        async def get(self) -> None:
            phase = self.get_query_argument("phase", None)
            self.reply(await self.call(views.status, ch, self.team, phase))

        async def prepare(self) -> None:
            await super().prepare()
            if self._finished or self.request.method != "POST":
                return
            size = self.request.headers.get("Content-Length")
            if size is None or not size.isdigit():
                return self.fail(411, "send the archive with a Content-Length")
            if int(size) > upload_cap(ch):
                return self.fail(
                    413, f"the upload is over the {ch.spec.limits.submission_mb:g} MiB limit"
                )
            if isinstance(self.request.connection, HTTP1Connection):  # tornado's cap: 100 MB
                self.request.connection.set_max_body_size(upload_cap(ch))
            self._folder = Path(tempfile.mkdtemp(prefix="medai-upload-", dir=incoming))
            self._partial = self._folder / "upload.zip.partial"
            self._out = open(self._partial, "wb")  # noqa: SIM115 (closed in post/on_finish)

        def data_received(self, chunk: bytes) -> None:
            self._out.write(chunk)

        async def post(self) -> None:
            assert self._folder is not None
            self._out.close()
            upload = self._partial.with_name("upload.zip")
            self._partial.rename(upload)  # complete: the body was read to its end
            tree = self._folder / "files"
            cap = int(ch.spec.limits.submission_mb * 2**20)
            await self.call(archive.unpack, upload, tree, cap)
            upload.unlink()
            path = self._entry(tree, self.get_query_argument("entry", "."))
            phase = self.get_query_argument("phase", None)
            fmt = self.get_query_argument("format", None)

            def submit() -> dict[str, Any]:
                row = ch.submit(path, team=self.team, phase=phase, fmt=fmt)
                return views.one(ch, self.team, int(row["id"]))

            self.reply(await self.call(submit), 201)

        def _entry(self, tree: Path, entry: str) -> Path:
            path = (tree / entry).resolve()
            if path != tree.resolve() and tree.resolve() not in path.parents:
                raise web.HTTPError(400, f"entry {entry!r} is outside the archive")
            if not path.exists():
                raise web.HTTPError(400, f"entry {entry!r} is not in the archive")
            return path

        def on_finish(self) -> None:
            if self._out is not None:
                self._out.close()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)

    api = f"{base}/api"
    return web.Application(
        [
            (f"{api}/info", Info),
            (f"{api}/submissions", Submissions),
            (f"{api}/submissions/([0-9]+)", One),
            (f"{api}/leaderboard", Board),
        ],
    )

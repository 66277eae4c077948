"""REST handlers under ``{base_url}medai-lab/api/`` (contract: ``docs/lab-api.md``).

All are authenticated (and authorised) ``APIHandler``s; every client path goes through
:func:`medai_lab.server.paths.confine`. Slow work (NVML, loading and compressing volumes) runs
in threads so the server stays responsive.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from medai_lab.server import paths, stream, templates

GPU_CACHE_S = 1.0  # several tabs polling every few seconds share one NVML query


class _Base(APIHandler):
    auth_resource = "contents"

    @property
    def root(self) -> str:
        return str(self.settings.get("server_root_dir") or self.contents_manager.root_dir)

    def confine(self, rel: str, **kwargs: Any) -> Path:
        allow_hidden = bool(getattr(self.contents_manager, "allow_hidden", False))
        try:
            return paths.confine(self.root, rel, allow_hidden=allow_hidden, **kwargs)
        except paths.PathRefused as exc:
            raise web.HTTPError(exc.status, exc.message) from None

    def raw_argument(self, name: str) -> str | None:
        """A query argument as sent (tornado's getters turn control characters such as NUL
        into spaces and strip them; the path checks must see them)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise web.HTTPError(400, f"{name}: not UTF-8") from None

    def reply(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class TemplatesHandler(_Base):
    """GET: the launcher's templates. POST ``{"id", "dir"}``: copy one, never overwriting."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(templates.list_templates())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body must be JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise web.HTTPError(400, 'body must be {"id": ..., "dir": ...}')
        rel = body.get("dir") or ""
        if not isinstance(rel, str):
            raise web.HTTPError(400, "dir must be a string")
        folder = self.confine(rel, check_tree=False)
        if not folder.is_dir():
            raise web.HTTPError(400, f"not a folder: {rel}")
        try:
            target = templates.copy_template(body["id"], folder)
        except KeyError:
            raise web.HTTPError(404, f"no template {body['id']!r} installed") from None
        except OSError as exc:
            raise web.HTTPError(409, f"cannot copy the template: {exc.strerror or exc}") from None
        self.reply({"path": paths.relative(target, self.root)}, status=201)


class GpusHandler(_Base):
    """GET: GPUs seen by NVML, or ``cpu_only``."""

    auth_resource = "api"
    _last: tuple[float, dict[str, Any]] | None = None

    @web.authenticated
    @authorized
    async def get(self) -> None:
        cls = type(self)
        if cls._last is None or time.monotonic() - cls._last[0] > GPU_CACHE_S:
            from medai_lab.server.nvml import query

            cls._last = (time.monotonic(), await asyncio.to_thread(query))
        self.set_header("Cache-Control", "no-store")
        self.reply(cls._last[1])


class ShareHandler(_Base):
    """GET: this server's CPU and memory share (its cgroup on a hub), shown beside the GPU."""

    auth_resource = "api"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from medai_lab import cpushare

        self.set_header("Cache-Control", "no-store")
        self.reply(
            {
                "cpus": round(cpushare.cpu_share(), 2),
                "threads": cpushare.cpu_count(),
                "memory": cpushare.memory_limit(),
            }
        )


class VolumeHandler(_Base):
    """GET ``?path=...[&labels=...]``: the viewer's frames, written chunk by chunk."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        image = self._volume_path(self.raw_argument("path") or "", "path")
        labels_arg = self.raw_argument("labels")
        labels = None if labels_arg is None else self._volume_path(labels_arg, "labels")
        try:
            scene, state = await asyncio.to_thread(stream.load, image, labels)
        except Exception as exc:  # any loading failure is the file's, said in one line
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.log.info("medai-lab volume %s: %s", image, line)
            raise web.HTTPError(422, f"cannot read {image.name}: {line}") from None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        try:
            self.write(stream.frame(state))
            await self.flush()
            messages = stream.messages(scene)
            done = object()
            while True:
                item = await asyncio.to_thread(next, messages, done)
                if item is done:
                    break
                message, payload = item  # type: ignore[misc]
                self.write(stream.frame(message, payload))
                await self.flush()
        except StreamClosedError:  # the viewer was closed mid-stream
            return
        self.finish()

    def _volume_path(self, rel: str, what: str) -> Path:
        if not rel:
            raise web.HTTPError(400, f"missing query argument {what}")
        path = self.confine(rel)
        if not stream.is_volume(path):
            raise web.HTTPError(400, f"{what}: not a .nii, .nii.gz, .dcm file or a DICOM folder")
        return path


def handlers(base_url: str) -> list[tuple[str, type[APIHandler]]]:
    """(URL pattern, handler) pairs under ``base_url``."""
    from jupyter_server.utils import url_path_join

    from medai_lab.server.challenge import challenge_handlers
    from medai_lab.server.labels_save import labels_save_handlers

    api = url_path_join(base_url, "medai-lab", "api")
    return [
        *challenge_handlers(api),
        (url_path_join(api, "templates"), TemplatesHandler),
        (url_path_join(api, "gpus"), GpusHandler),
        (url_path_join(api, "share"), ShareHandler),
        (url_path_join(api, "volume"), VolumeHandler),
        *labels_save_handlers(api),
    ]

"""A hub-managed service that puts JupyterHub authentication in front of a private web server.

``python -m medai_lab.hub.authproxy --upstream-port P [--ready-path /health] -- CMD ...``
starts ``CMD`` (e.g. ``mlflow server --host 127.0.0.1 --port P``), listens on the service
address JupyterHub gives it (``JUPYTERHUB_SERVICE_URL``) and forwards every request under
``JUPYTERHUB_SERVICE_PREFIX`` to ``127.0.0.1:P``, streaming bodies both ways, only for callers
the hub vouches for:

* programs send a JupyterHub token (``Authorization: Bearer <token>`` or ``token <token>``;
  MLflow clients do this from ``MLFLOW_TRACKING_TOKEN``) with the scope
  ``access:services!service=<name>``;
* browsers log in through the hub (OAuth; a cookie afterwards). Cookie-authenticated writes
  must come from the same origin (``Sec-Fetch-Site``) or carry the hub's XSRF token.

Anonymous API calls get 401, browsers a redirect to the hub login, authenticated users
without the scope 403. Hub credentials (``Authorization``, cookies) never reach the upstream.
For MLflow, ``runs/create`` is rewritten so that a run's user is the hub user who created it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
DROP_UPSTREAM = HOP_BY_HOP | {"authorization", "cookie", "host"}
RUN_CREATE_SUFFIX = "/mlflow/runs/create"
MAX_JSON_BODY = 4 * 2**20


def make_app(
    upstream: str,
    prefix: str,
    rewrite_run_user: bool = True,
    strip_prefix: bool = False,
    is_ready: Callable[[], bool] = lambda: True,
) -> Any:
    """The tornado application: OAuth callback + the authenticated streaming proxy."""
    from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import httpclient, web

    @web.stream_request_body
    class ProxyHandler(HubOAuthenticated, web.RequestHandler):
        SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

        def check_xsrf_cookie(self) -> None:
            if self.request.headers.get("Sec-Fetch-Site") == "same-origin":
                return  # the browser says the page is ours: not a cross-site request
            self.hub_auth.check_xsrf_cookie(self)

        async def prepare(self) -> None:
            self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            self._buffer: list[bytes] | None = None
            self._fetch: asyncio.Future[Any] | None = None
            self._status_set = False
            model = await self.hub_auth.get_user(self, sync=False)
            if model is not None and not self.hub_auth.check_scopes(self.hub_scopes, model):
                self._deny(403, f"{model.get('name')} may not use this service")
                return
            if model is None:
                h = self.request.headers
                page = "text/html" in h.get("Accept", "") or h.get("Sec-Fetch-Mode") == "navigate"
                if self.request.method == "GET" and page and "Authorization" not in h:
                    self._closing()
                    self.redirect(self.get_login_url())
                    return
                self._deny(
                    401,
                    "this service needs JupyterHub authentication: send a hub "
                    "token (MLFLOW_TRACKING_TOKEN in your server) or log in",
                )
                return
            self.current_user = model
            if not is_ready():
                self.set_header("Retry-After", "5")
                self._deny(503, "the service is starting; try again in a few seconds")
                return
            if rewrite_run_user and self.request.path.endswith(RUN_CREATE_SUFFIX):
                self._buffer = []  # small JSON: rewritten at the end
            else:
                self._fetch = asyncio.ensure_future(self._forward(self._has_body()))

        def _closing(self) -> None:
            # Answered before the body is read: tornado then closes the connection, and the hub's
            # proxy, which keeps upstream connections alive, must not send the next request down
            # it (that request would fail with 503).
            self.set_header("Connection", "close")

        def _deny(self, status: int, message: str) -> None:
            self._closing()
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            if status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="jupyterhub"')
            codes = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
            code = codes.get(status, "TEMPORARILY_UNAVAILABLE")
            self.finish(json.dumps({"error_code": code, "message": message}))

        def _has_body(self) -> bool:
            h = self.request.headers
            return int(h.get("Content-Length", "0") or 0) > 0 or "Transfer-Encoding" in h

        def data_received(self, chunk: bytes) -> None:
            if self._buffer is not None:
                self._buffer.append(chunk)
                if sum(map(len, self._buffer)) > MAX_JSON_BODY:
                    raise web.HTTPError(413)
            else:
                self._queue.put_nowait(chunk)

        def _rewrite_body(self) -> bytes:
            raw = b"".join(self._buffer or [])
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return raw
            name = self.current_user["name"]
            body["user_id"] = name
            tags = [t for t in body.get("tags", []) if t.get("key") != "mlflow.user"]
            body["tags"] = [*tags, {"key": "mlflow.user", "value": name}]
            return json.dumps(body).encode()

        async def _forward(self, has_body: bool, body: bytes | None = None) -> None:
            headers = {
                k: v for k, v in self.request.headers.get_all() if k.lower() not in DROP_UPSTREAM
            }
            headers["X-Forwarded-User"] = self.current_user["name"]
            headers["X-Forwarded-Proto"] = self.request.protocol
            if body is not None:
                headers["Content-Length"] = str(len(body))

            async def producer(write: Any) -> None:
                while (chunk := await self._queue.get()) is not None:
                    await write(chunk)

            req = httpclient.HTTPRequest(
                upstream + self._upstream_uri(),
                method=self.request.method,
                headers=headers,
                body=body,
                body_producer=producer if has_body and body is None else None,
                follow_redirects=False,
                decompress_response=False,
                allow_nonstandard_methods=True,
                request_timeout=3600,
                header_callback=self._on_header,
                streaming_callback=self._on_chunk,
            )
            resp = await httpclient.AsyncHTTPClient().fetch(req, raise_error=False)
            if resp.code == 599:
                raise web.HTTPError(502, f"upstream unavailable: {resp.error}")

        def _upstream_uri(self) -> str:
            uri = self.request.uri or "/"
            if strip_prefix and uri.startswith(prefix):
                uri = uri[len(prefix) :]
            return uri if uri.startswith("/") else "/" + uri

        def _on_header(self, line: str) -> None:
            line = line.rstrip("\r\n")
            if line.startswith("HTTP/"):
                parts = line.split(" ", 2)
                self.set_status(int(parts[1]), parts[2] if len(parts) > 2 else None)
                self.clear_header("Content-Type")
            elif line and ":" in line:
                key, value = line.split(":", 1)
                if key.strip().lower() not in HOP_BY_HOP:
                    self.add_header(key.strip(), value.strip())

        def _on_chunk(self, chunk: bytes) -> None:
            self.write(chunk)
            self.flush()

        async def _relay(self) -> None:
            if self._buffer is not None:
                self._fetch = asyncio.ensure_future(self._forward(True, self._rewrite_body()))
            else:
                self._queue.put_nowait(None)
            assert self._fetch is not None
            await self._fetch
            self.finish()

        get = head = post = delete = patch = put = options = _relay

    prefix = prefix.rstrip("/")
    handlers = [
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        (prefix + "(?:/.*)?", ProxyHandler),
    ]
    app = web.Application(handlers, cookie_secret=os.urandom(32))
    HubOAuth.instance()  # fail fast if the hub's environment variables are missing
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: start the upstream command, then serve the authenticated proxy."""
    parser = argparse.ArgumentParser(prog="python -m medai_lab.hub.authproxy")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--ready-path", default="/", help="upstream path that answers when ready")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--no-run-user", action="store_true", help="do not rewrite runs/create")
    parser.add_argument("--strip-prefix", action="store_true", help="upstream serves at /")
    parser.add_argument(
        "--stop-timeout", type=float, default=5.0, help="seconds the upstream gets to stop"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- upstream command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the upstream command after --")

    from tornado import httpclient, ioloop

    service_url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    upstream = f"http://127.0.0.1:{args.upstream_port}"
    proc = subprocess.Popen(command, start_new_session=True)
    ready = asyncio.Event()
    stop_requested = asyncio.Event()
    signalled: list[int] = []
    loop = ioloop.IOLoop.current()

    def on_signal(signum: int, _frame: Any) -> None:
        # Only note it here: the loop winds down, then the upstream is stopped outside any
        # handler (a handler that blocks while the hub sends its next signal exits half-way).
        signalled.append(signum)
        loop.add_callback_from_signal(stop_requested.set)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        httpclient.AsyncHTTPClient.configure(None, max_clients=64)
        app = make_app(upstream, prefix, not args.no_run_user, args.strip_prefix, ready.is_set)
        # Listen at once: the hub waits only briefly for a managed service (anonymous requests
        # get 401 while the upstream starts, authenticated ones 503 + Retry-After).
        app.listen(service_url.port or 80, address=service_url.hostname or "127.0.0.1")
        loop.run_sync(
            lambda: supervise(
                proc, upstream + args.ready_path, args.ready_timeout, ready, stop_requested
            ),
        )
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the hub may signal again: we are ending
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_upstream(proc, args.stop_timeout)
    return 0 if signalled else 1  # 1: the upstream exited or never became ready


def _group(pgid: int) -> set[int]:
    """Live processes of process group ``pgid`` (from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


def stop_upstream(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the upstream's process group; SIGKILL what is left after ``timeout`` s.

    A launcher such as ``mlflow server`` spends seconds tearing its interpreter down after its
    server child has exited; once only the launcher is left, it gets one more second.
    """
    if proc.poll() is not None and not _group(proc.pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    alone_since: float | None = None
    while time.monotonic() < end and proc.poll() is None:
        if _group(proc.pid) <= {proc.pid}:
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > 1.0:
                break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


async def supervise(
    proc: subprocess.Popen[bytes],
    ready_url: str,
    timeout: float,
    ready: asyncio.Event,
    stop_requested: asyncio.Event | None = None,
) -> None:
    """Mark ``ready`` once the upstream answers; return (to exit) when the upstream exits or a
    stop is requested."""
    from tornado import httpclient

    stop_requested = stop_requested or asyncio.Event()
    client = httpclient.AsyncHTTPClient()
    end = time.monotonic() + timeout
    while proc.poll() is None and not stop_requested.is_set():
        if not ready.is_set():
            try:
                resp = await client.fetch(ready_url, raise_error=False, request_timeout=5)
                if resp.code < 500:
                    ready.set()
                    print(f"authproxy: upstream ready at {ready_url}", flush=True)
            except OSError:
                pass
            if not ready.is_set() and time.monotonic() > end:
                print(f"authproxy: upstream not ready after {timeout:.0f} s", file=sys.stderr)
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop_requested.wait(), 2.0 if ready.is_set() else 0.5)
    if not stop_requested.is_set():
        print(f"authproxy: upstream exited ({proc.returncode})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

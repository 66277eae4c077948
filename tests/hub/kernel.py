"""Run code in a real kernel of a user's server, through the hub proxy, with the user's token."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import requests


async def _execute(ws_url: str, token: str, code: str, user: str) -> tuple[str, str]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(
        HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}), max_message_size=2**26
    )
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "username": user,
        "session": uuid.uuid4().hex,
        "version": "5.3",
        "date": datetime.now(timezone.utc).isoformat(),
    }
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
    content |= {"allow_stdin": False, "stop_on_error": True}
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    await ws.write_message(json.dumps(message | {"channel": "shell", "buffers": []}))
    out: list[str] = []
    status, idle = "", False  # shell (reply) and iopub (idle) may arrive in either order
    try:
        while not (status and idle):
            raw = await ws.read_message()
            if raw is None:
                raise AssertionError("kernel websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            elif kind == "execute_reply":
                status = msg["content"]["status"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        return status, "".join(out)
    finally:
        ws.close()


def run_in_kernel(hub_url: str, user: str, token: str, code: str, timeout: float = 180) -> str:
    """Start a kernel in ``user``'s server, run ``code``, shut the kernel down; return stdout.

    The kernel is the server's own ``python3`` kernel: it inherits the server's environment
    (GPU variables, MLflow URI and token), exactly as a notebook's would.
    """
    base = f"{hub_url}/user/{user}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    r = requests.post(base, headers=headers, json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    try:
        ws_url = f"{base}/{kernel}/channels".replace("http://", "ws://", 1)
        status, out = asyncio.run(asyncio.wait_for(_execute(ws_url, token, code, user), timeout))
        assert status == "ok", out
        return out
    finally:
        requests.delete(f"{base}/{kernel}", headers=headers, timeout=60)

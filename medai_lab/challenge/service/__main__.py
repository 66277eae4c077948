"""``python -m medai_lab.challenge.service --dir DIR [-- EVALUATOR COMMAND ...]``.

Run by JupyterHub as a managed service (as the evaluator's account): makes the challenge folder
private, serves :mod:`.app` on ``JUPYTERHUB_SERVICE_URL`` under ``JUPYTERHUB_SERVICE_PREFIX``,
and supervises the evaluator command if one is given (its exit ends the service; the hub then
restarts both, and the evaluator picks up what was left running).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from medai_lab.challenge.api import Challenge
from medai_lab.challenge.service.app import make_app
from medai_lab.challenge.service.privacy import make_private


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the evaluator's process group, SIGKILL it after ``timeout`` s."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything the evaluator left in its group


async def _serve(ch: Challenge, evaluator: list[str]) -> int:
    url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(ch, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
    server = app.listen(url.port or 80, address=url.hostname or "127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    proc = subprocess.Popen(evaluator, start_new_session=True) if evaluator else None
    code = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if proc is not None and proc.poll() is not None:
                print(f"challenge service: evaluator exited ({proc.returncode})", file=sys.stderr)
                code = 1
                break
    finally:
        server.stop()
        if proc is not None:
            _stop(proc)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m medai_lab.challenge.service")
    parser.add_argument("--dir", required=True, help="the challenge folder")
    parser.add_argument("evaluator", nargs=argparse.REMAINDER, help="-- evaluator command")
    args = parser.parse_args(argv)
    evaluator = args.evaluator[1:] if args.evaluator[:1] == ["--"] else args.evaluator
    ch = Challenge.open(args.dir)
    for line in make_private(ch):
        print(f"challenge service: warning: {line}", file=sys.stderr)
    return asyncio.run(_serve(ch, evaluator))


if __name__ == "__main__":
    sys.exit(main())

"""SIGTERM during training: raise in the main thread so the run can be marked KILLED.

A scheduler (Slurm, Kubernetes, JupyterHub culling) stops a job with SIGTERM. Python's default
is to die on the spot, which would leave the MLflow run RUNNING. :class:`SigtermGuard` installs
a handler that raises :class:`TrainingTerminated` (a ``SystemExit`` with status 143) so the
training framework's exception path runs and the run is ended properly. Nothing is written to
MLflow from inside the handler: the interrupted code may hold locks that writing would need.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

_ARMED, _TERMINATING, _DISARMED = "armed", "terminating", "disarmed"


class TrainingTerminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives during training; exit status 128 + 15."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + int(signum))


class SigtermGuard:
    """Install/uninstall the raising SIGTERM handler (main thread only; no-op elsewhere)."""

    def __init__(self) -> None:
        self.state = _DISARMED
        self.handler: Any = None
        self.previous: Any = None

    def install(self) -> bool:
        """Install the handler; False when not in the main thread or SIGTERM is ignored."""
        if threading.current_thread() is not threading.main_thread():
            return False
        prev = signal.getsignal(signal.SIGTERM)
        if prev is signal.SIG_IGN:  # the process was told to ignore SIGTERM: respect that
            return False

        owner = os.getpid()

        def handler(signum: int, frame: Any) -> None:
            if self.state == _TERMINATING and os.getpid() == owner:  # ignore repeats
                return
            # after training, or in a forked child (a DataLoader worker): act like `prev`
            if self.state == _DISARMED or os.getpid() != owner:
                _call_previous(prev, signum, frame)
                return
            self.state = _TERMINATING
            if callable(prev):  # a handler the user had (it may raise itself)
                prev(signum, frame)
            raise TrainingTerminated(signum)

        signal.signal(signal.SIGTERM, handler)
        self.previous, self.handler, self.state = prev, handler, _ARMED
        return True

    def restore(self, saved_handlers: dict[Any, Any] | None = None) -> None:
        """Put the previous handler back.

        ``saved_handlers`` is a restore table another component will apply later (Lightning's
        signal connector snapshots our handler and re-installs it after ``on_exception``); where
        it holds our handler it is replaced by the previous one.
        """
        handler, prev = self.handler, self.previous
        self.state = _DISARMED
        if handler is None or threading.current_thread() is not threading.main_thread():
            return
        prev = signal.SIG_DFL if prev is None else prev
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, prev)
        if isinstance(saved_handlers, dict) and saved_handlers.get(signal.SIGTERM) is handler:
            saved_handlers[signal.SIGTERM] = prev
        self.handler = self.previous = None


def _call_previous(prev: Any, signum: int, frame: Any) -> None:
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

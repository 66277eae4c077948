"""A background sender: metrics and uploads go to MLflow from one daemon thread.

The training thread only appends to a queue (``queue.SimpleQueue.put``, a few microseconds);
the thread batches whatever has piled up into ``MlflowClient.log_batch`` calls.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from medai_lab.tracking.params import MAX_METRICS_PER_BATCH

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

_RETRIES = 3


class BackgroundLogger:
    """Queue of metric points and upload jobs for one run, sent in order by a daemon thread.

    Parameters
    ----------
    client
        The ``MlflowClient`` to send with (used from the worker thread only, plus ``close``).
    run_id
        Run the metrics belong to.
    """

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.errors: list[BaseException] = []
        self.batches_sent = 0
        self.points_sent = 0
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="medai-mlflow-logger", daemon=True)
        self._thread.start()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int, timestamp_ms: int | None = None
    ) -> None:
        """Queue one value per key at ``step`` (returns at once)."""
        if not metrics:
            return
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        self._put("metrics", [(k, float(v), ts, int(step)) for k, v in metrics.items()])

    def submit(self, job: Callable[[], object]) -> None:
        """Queue a job (an artifact upload, say) to run on the worker thread, in order."""
        self._put("call", job)

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until everything queued so far is sent; False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 60.0) -> bool:
        """Send what is queued, then stop the thread; False if it did not finish in time."""
        if self._closed:
            return True
        self._closed = True
        done = threading.Event()
        self._queue.put(("stop", done))
        ok = done.wait(timeout)
        self._thread.join(1.0 if ok else 0.0)
        return ok

    def _put(self, kind: str, payload: Any) -> None:
        if self._closed:
            raise RuntimeError("the MLflow background logger is closed")
        self._queue.put((kind, payload))

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            points: list[tuple[str, float, int, int]] = []
            stop: threading.Event | None = None
            for kind, payload in items:
                if kind == "metrics":
                    points.extend(payload)
                    continue
                self._send(points)
                points = []
                if kind == "call":
                    self._guard(payload)
                elif kind == "flush":
                    payload.set()
                elif kind == "stop":
                    stop = payload
            self._send(points)
            if stop is not None:
                stop.set()
                return

    def _send(self, points: list[tuple[str, float, int, int]]) -> None:
        if not points:
            return
        from mlflow.entities import Metric

        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            chunk = [
                Metric(k, v, ts, step)
                for k, v, ts, step in points[start : start + MAX_METRICS_PER_BATCH]
            ]
            if self._guard(functools.partial(self.client.log_batch, self.run_id, metrics=chunk)):
                self.batches_sent += 1
                self.points_sent += len(chunk)

    def _guard(self, job: Callable[[], object]) -> bool:
        """Run ``job``; retry briefly (SQLite may be locked by a reader); never raise."""
        for attempt in range(_RETRIES):
            try:
                job()
                return True
            except Exception as exc:
                if attempt == _RETRIES - 1:
                    self.errors.append(exc)
                    log.warning("MLflow logging failed for run %s: %s", self.run_id, exc)
                    return False
                time.sleep(0.2 * (attempt + 1))
        return False

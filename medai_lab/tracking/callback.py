"""``TrackingCallback``: one Lightning fit ↔ one MLflow run (this module imports Lightning)."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from medai_lab.tracking.params import jsonable, sanitize_key, scalar
from medai_lab.tracking.runcard import build_run_card
from medai_lab.tracking.runs import (
    RESUME_TAG,
    log_params_and_tags,
    log_run_card,
    run_tags,
    start_run,
)
from medai_lab.tracking.sigterm import SigtermGuard, TrainingTerminated
from medai_lab.tracking.store import make_client, resolve_tracking_uri
from medai_lab.tracking.worker import BackgroundLogger

__all__ = ["TrackingCallback", "TrainingTerminated"]

log = logging.getLogger(__name__)


class TrackingCallback(pl.Callback):
    """Track a Lightning ``fit`` as one MLflow run: params, epoch metrics, run card, artifacts.

    Parameters
    ----------
    experiment
        Experiment name (created on first use).
    config
        Nested training config; logged flattened (``model.lr``) as params.
    run_name
        Display name of a new run.
    tracking_uri
        Store; default :func:`medai_lab.tracking.default_tracking_uri`.
    run_id
        Resume this existing run instead of creating one (status goes back to RUNNING).
    tags
        Extra run tags.
    run_card
        A card from :func:`build_run_card` (with the data manifest); built from ``config``
        when not given.
    command_line
        ``argv`` recorded in tags and the card; default: the card's, else ``sys.argv``.
    end_on_fit_end
        False keeps the run open after ``fit`` (for a final evaluation and artifacts); the
        caller then ends it with :meth:`end`, also on errors.

    Notes
    -----
    The run ends FINISHED on ``on_fit_end``; FAILED on an exception; KILLED on
    ``KeyboardInterrupt``, ``SystemExit`` or SIGTERM. Epoch metrics are queued and sent by a
    background thread. ``run_id`` is set from ``on_fit_start`` on (on global rank 0 only).
    """

    def __init__(
        self,
        experiment: str,
        config: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_card: Mapping[str, Any] | None = None,
        command_line: Sequence[str] | None = None,
        end_on_fit_end: bool = True,
    ) -> None:
        super().__init__()
        self.end_on_fit_end = end_on_fit_end
        self.experiment = experiment
        self.config = dict(config or {})
        self.run_name = run_name
        self.tracking_uri = tracking_uri
        self.tags = dict(tags or {})
        self.run_card = dict(run_card) if run_card is not None else None
        if command_line is None:  # the card's, else this process's argv
            command_line = (run_card or {}).get("command_line") or sys.argv
        self.command_line = [str(a) for a in command_line]
        self.resume_run_id = run_id
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.status: str | None = None
        self.overhead_s = 0.0  # time the epoch-metric hooks took on the training thread
        self._client: Any = None
        self._worker: BackgroundLogger | None = None
        self._tmp: Path | None = None
        self._rank_zero = True
        self._pending_step: int | None = None
        self._pending: dict[str, float] = {}
        self._val_keys: set[str] = set()
        self._val_before: dict[str, float] = {}
        self._last_train_step: int | None = None
        self._sent_step: int | None = None
        self._sent_keys: set[str] = set()
        self._late_keys: set[str] = set()
        self._at_epoch_end: dict[str, float] = {}
        self._sigterm = SigtermGuard()

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` of the run (None before ``on_fit_start``)."""
        return self._client

    @staticmethod
    def of(trainer: pl.Trainer) -> TrackingCallback | None:
        """The ``TrackingCallback`` among ``trainer.callbacks``, if any."""
        callbacks = getattr(trainer, "callbacks", [])  # a Trainer property the stubs miss
        return next((c for c in callbacks if isinstance(c, TrackingCallback)), None)

    # ---------------------------------------------------------------- lifecycle

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rank_zero = trainer.is_global_zero
        if not self._rank_zero:
            return
        self._sigterm.install()
        self.run_id = self.experiment_id = self.status = None
        self._pending_step, self._pending, self._last_train_step = None, {}, None
        self._sent_step, self._sent_keys = None, set()
        self._start_run()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._rank_zero:
            self._send_pending()
            if self.end_on_fit_end:
                self._end("FINISHED")
                self._restore_sigterm(trainer)

    def end(self, status: str = "FINISHED") -> None:
        """End the run as ``FINISHED``, ``FAILED`` or ``KILLED`` (once; later calls no-op)."""
        if not self._rank_zero or self.status is not None:
            return
        try:
            self._end(status)
        finally:
            self._sigterm.restore()

    def _restore_sigterm(self, trainer: pl.Trainer) -> None:
        # Lightning snapshots the handlers (ours by then) when its loop starts and re-installs
        # them after on_exception: fix its table too.
        connector = getattr(trainer, "_signal_connector", None)
        self._sigterm.restore(getattr(connector, "_original_handlers", None))

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not self._rank_zero or trainer.state.fn != "fit":  # not a later validate/test
            return
        killed = isinstance(exception, (KeyboardInterrupt, SystemExit))
        try:
            if self.run_id is not None:
                self._client.set_tag(self.run_id, "medai_lab.exception", type(exception).__name__)
            self._end("KILLED" if killed else "FAILED")
        except Exception as exc:  # never mask the training error
            log.warning("could not mark MLflow run %s as ended: %s", self.run_id, exc)
        finally:
            self._restore_sigterm(trainer)

    # ------------------------------------------------------------ epoch metrics

    # An epoch's metrics are held per key and sent once: at on_train_epoch_end (validation at
    # the end of an epoch has run by then). Keys the module logs in its own on_train_epoch_end,
    # which Lightning calls after the callbacks', still hold last epoch's value at that point:
    # they are found as keys that change after it ("late" keys), and sent at the next epoch
    # start / train end instead.

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._catch_up(trainer)
        # The last epoch's checkpoint is on disk now: its metrics must be too, or a kill -9 in
        # this epoch loses them for good (a resume starts after them). The queue has had the
        # whole checkpoint save to drain, so this rarely waits.
        self._timed(lambda: self._worker.flush(30.0) if self._worker is not None else None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_train_step = trainer.current_epoch

        def send() -> None:
            now = self._train_scalars(trainer)
            self._at_epoch_end = now
            self._stage(
                trainer.current_epoch, {k: v for k, v in now.items() if k not in self._late_keys}
            )
            self._send_pending()

        self._timed(send)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._catch_up(trainer)

    def _catch_up(self, trainer: pl.Trainer) -> None:
        step = self._last_train_step
        if step is None:
            return

        def send() -> None:
            now, before = self._train_scalars(trainer), self._at_epoch_end
            self._late_keys |= {k for k, v in now.items() if before.get(k) != v}
            self._stage(step, {k: now[k] for k in self._late_keys if k in now})
            self._send_pending()
            self._last_train_step = None

        self._timed(send)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_before = self._scalars(trainer) if self._live(trainer) else {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_validation_end runs after the module's on_validation_epoch_end, so it sees all of
        # the validation epoch's metrics. Keys new or changed since the start are validation keys.
        if not self._live(trainer):
            return

        def stage() -> None:
            now = self._scalars(trainer)
            before = self._val_before
            self._val_keys |= {k for k, v in now.items() if before.get(k) != v}
            vals = {k: now[k] for k in self._val_keys if k in now}
            self._stage(trainer.current_epoch, vals)

        self._timed(stage)

    def _live(self, trainer: pl.Trainer) -> bool:
        return self._rank_zero and self._worker is not None and not trainer.sanity_checking

    def _timed(self, fn: Callable[[], object]) -> None:
        if not self._rank_zero or self._worker is None:
            return
        start = time.perf_counter()
        fn()
        self.overhead_s += time.perf_counter() - start

    @staticmethod
    def _scalars(trainer: pl.Trainer) -> dict[str, float]:
        out = {}
        for key, value in trainer.callback_metrics.items():
            number = scalar(value)
            if number is not None:
                out[sanitize_key(key)] = number
        return out

    def _train_scalars(self, trainer: pl.Trainer) -> dict[str, float]:
        return {k: v for k, v in self._scalars(trainer).items() if k not in self._val_keys}

    def _stage(self, step: int, metrics: Mapping[str, float]) -> None:
        """Hold the latest value per key for ``step``; a new step sends the held one."""
        if self._pending_step is not None and step != self._pending_step:
            self._send_pending()
        self._pending_step = step
        self._pending.update(metrics)

    def _send_pending(self) -> None:
        """Queue the held values, except keys already sent for that step."""
        step, held, self._pending = self._pending_step, self._pending, {}
        if step is None or not held or self._worker is None:
            return
        if step != self._sent_step:
            self._sent_step, self._sent_keys = step, set()
        fresh = {k: v for k, v in held.items() if k not in self._sent_keys}
        self._sent_keys.update(fresh)
        self._worker.log_metrics(fresh, step)

    # ------------------------------------------------------------- public API

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log scalar metrics at ``step`` (queued during fit, sent directly afterwards)."""
        values = {sanitize_key(k): v for k, v in metrics.items()}
        values = {k: f for k, v in values.items() if (f := scalar(v)) is not None}
        if self._need_run() and values:
            if self._worker is not None:
                self._worker.log_metrics(values, step)
            else:
                from mlflow.entities import Metric

                ts = int(time.time() * 1000)
                batch = [Metric(k, v, ts, step) for k, v in values.items()]
                self._client.log_batch(self.run_id, metrics=batch)

    def log_table(self, df: Any, name: str, artifact_path: str = "tables") -> str | None:
        """Log a DataFrame (or anything ``pandas.DataFrame`` accepts) as CSV."""
        if not self._need_run():
            return None
        if not hasattr(df, "to_csv"):
            import pandas as pd

            df = pd.DataFrame(df)
        index = type(df.index).__name__ != "RangeIndex"
        return self._upload(name, (".csv",), artifact_path, lambda p: df.to_csv(p, index=index))

    def log_figure(
        self, fig: Any, name: str, artifact_path: str = "figures", dpi: int = 100
    ) -> str | None:
        """Log a matplotlib figure as PNG (rendered now, uploaded in the background)."""
        if not self._need_run():
            return None
        return self._upload(
            name, (".png",), artifact_path, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight")
        )

    def _log_dict(self, d: Mapping[str, Any], name: str, artifact_path: str = "") -> str | None:
        """Log a mapping as JSON (or YAML when ``name`` ends in ``.yaml``/``.yml``)."""
        if not self._need_run():
            return None

        def write(path: Path) -> None:
            data = jsonable(d)
            if path.suffix in (".yaml", ".yml"):
                import yaml

                path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            else:
                path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

        return self._upload(name, (".json", ".yaml", ".yml"), artifact_path, write)

    # Lightning sets ``callback.log_dict = module.log_dict`` on every callback at fit start; a
    # property whose setter ignores that keeps ``log_dict`` the artifact method above.
    log_dict = property(
        lambda self: self._log_dict, lambda self, value: None, doc=_log_dict.__doc__
    )

    def log_file(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> str:
        """Upload a local file now (synchronously: the file may be removed afterwards)."""
        if not self._need_run():
            return ""
        self._client.log_artifact(self.run_id, str(path), artifact_path or None)
        return "/".join(p for p in (artifact_path, Path(path).name) if p)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until queued metrics/uploads are sent; False if that took over ``timeout``.

        The epoch still being collected is sent when it completes (one value per epoch).
        """
        return self._worker.flush(timeout) if self._worker is not None else True

    def _need_run(self) -> bool:
        if not self._rank_zero:
            return False
        if self.run_id is None:
            raise RuntimeError("TrackingCallback has no run yet: logging works from on_fit_start")
        return True

    def _upload(
        self, name: str, suffixes: tuple[str, ...], folder: str, write: Callable[[Path], object]
    ) -> str:
        name = name if name.lower().endswith(suffixes) else name + suffixes[0]
        rel = "/".join(p.strip("/") for p in (folder, name) if p.strip("/"))
        sub, base = os.path.split(rel)
        tmp = Path(tempfile.mkdtemp(prefix="medai-artifact-", dir=self._tmp))
        write(tmp / base)

        def job() -> None:  # (a failed upload's file goes with self._tmp at the end)
            self._client.log_artifact(self.run_id, str(tmp / base), sub or None)
            shutil.rmtree(tmp, ignore_errors=True)

        if self._worker is not None:
            self._worker.submit(job)
        else:
            try:
                job()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return rel

    # ---------------------------------------------------------------- run start

    def _start_run(self) -> None:
        self.tracking_uri = resolve_tracking_uri(self.tracking_uri)
        client = self._client = make_client(self.tracking_uri)
        card = self.run_card or build_run_card(self.config, None, self.command_line, None)
        tags = run_tags(card, self.command_line, {"medai_lab.experiment": self.experiment})
        tags.update({str(k): str(v) for k, v in self.tags.items()})
        run, resumes = start_run(client, self.experiment, self.run_name, self.resume_run_id)
        if resumes:
            tags[RESUME_TAG] = str(resumes)
        self.run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        atexit.register(self._atexit)
        self._tmp = Path(tempfile.mkdtemp(prefix="medai-mlflow-"))
        self._worker = BackgroundLogger(client, self.run_id)
        log_params_and_tags(client, run, self.config, tags)
        log_run_card(client, self.run_id, card, resumes)

    # ------------------------------------------------------------------ run end

    def _end(self, status: str) -> None:
        """Send what is queued, then set the run's final status (idempotent per status)."""
        if self.run_id is None or self.status == status:
            return
        self._send_pending()
        worker, self._worker = self._worker, None
        if worker is not None and not worker.close(timeout=120):
            log.warning("MLflow run %s: queued metrics not all sent in time", self.run_id)
        self._client.set_terminated(self.run_id, status=status)
        self.status = status
        atexit.unregister(self._atexit)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _atexit(self) -> None:
        if self.status is None and self.run_id is not None:
            try:
                self._end("KILLED")
            except Exception as exc:
                log.warning("could not mark MLflow run %s KILLED at exit: %s", self.run_id, exc)

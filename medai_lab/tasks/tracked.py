"""One training run ↔ one MLflow run: what ``train(track=...)`` adds to a fit.

Before the fit: a run card (with the data manifest) and a :class:`TrackingCallback` that stays
open past ``fit``. After the final evaluation: the per-case table, overlays of the best and
worst validation cases, the exported model(s) and the final metrics, then the run ends. The
run id is kept in ``<run_dir>/tracking.json`` so ``--resume`` continues the same MLflow run,
also after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl

from medai_lab import atomic
from medai_lab.tracking import build_run_card, resolve_tracking_uri, write_run_card
from medai_lab.tracking.callback import TrackingCallback

if TYPE_CHECKING:
    from medai_lab.export import ExportResult
    from medai_lab.tasks.result import TrainResult
    from medai_lab.tasks.schema import TrainConfig

log = logging.getLogger(__name__)

RUN_FILE = "tracking.json"
DEID_AUDIT = "deid_audit.csv"
BASIC_PROFILE = "DICOM PS3.15 Basic Application Level Confidentiality Profile"


def deid_profile_of(data_dir: Path) -> str | None:
    """The de-identification a dataset went through, when it says so.

    ``dataset.json`` may name it (``"deid_profile"``); a ``deid_audit.csv`` from
    ``medai-lab deid`` in the data folder means our Basic Profile.
    """
    folder = data_dir if data_dir.is_dir() else data_dir.parent
    meta = folder / "dataset.json"
    if meta.is_file():
        try:
            named = json.loads(meta.read_text(encoding="utf-8")).get("deid_profile")
        except (ValueError, AttributeError):
            named = None
        if named:
            return str(named)
    return BASIC_PROFILE if (folder / DEID_AUDIT).is_file() else None


class _RecordRunId(pl.Callback):
    """Write the MLflow run id next to the checkpoints as soon as the run exists."""

    def __init__(self, tracker: RunTracker) -> None:
        self.tracker = tracker

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        cb = self.tracker.callback
        if trainer.is_global_zero and cb.run_id:
            record = {"run_id": cb.run_id, "tracking_uri": cb.tracking_uri}
            atomic.write_text(self.tracker.run_file, json.dumps(record, indent=2) + "\n")


class RunTracker:
    """Tracks one :func:`medai_lab.tasks.runner.train` call in MLflow.

    Parameters
    ----------
    config
        The composed config (logged flattened as params).
    run_dir
        ``<out>/<task>``: holds ``tracking.json`` and the run card.
    cases
        Training and validation cases (``image``/``label`` paths) for the data manifest.
    experiment
        Experiment name.
    tracking_uri
        Store; default :func:`medai_lab.tracking.default_tracking_uri`.
    resume
        Continue the run recorded in ``tracking.json`` (same store only).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        data_dir: Path,
        cases: Sequence[Mapping[str, Any]],
        experiment: str,
        tracking_uri: str | None = None,
        resume: bool = False,
        command_line: Sequence[str] | None = None,
        run_name: str | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_file = run_dir / RUN_FILE
        uri = resolve_tracking_uri(tracking_uri)
        files = [Path(c[k]) for c in cases for k in ("image", "label")]
        root = data_dir if data_dir.is_dir() else data_dir.parent
        inside = all(f.resolve().is_relative_to(root.resolve()) for f in files)
        plain = config.as_dict()
        self.card = build_run_card(
            plain,
            files,
            command_line,
            deid_profile_of(data_dir),
            data_root=root if inside else None,
        )
        write_run_card(self.card, run_dir)
        self.callback = TrackingCallback(
            experiment,
            plain,
            run_name=run_name or f"{config.task.name}-{config.preset or ''}".strip("-"),
            tracking_uri=uri,
            run_id=self._previous_run(uri) if resume else None,
            tags={"medai_lab.task": config.task.name, "medai_lab.run_dir": str(run_dir)},
            run_card=self.card,
            end_on_fit_end=False,
        )

    @property
    def callbacks(self) -> list[pl.Callback]:
        return [self.callback, _RecordRunId(self)]

    @property
    def run_id(self) -> str | None:
        return self.callback.run_id

    def _previous_run(self, uri: str) -> str | None:
        try:
            record = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("no %s from the interrupted run: resuming into a new MLflow run", RUN_FILE)
            return None
        if record.get("tracking_uri") != uri:
            log.warning("the interrupted run was tracked elsewhere: starting a new MLflow run")
            return None
        return str(record["run_id"])

    @contextlib.contextmanager
    def ending_on_error(self) -> Iterator[None]:
        """End the run KILLED (Ctrl-C, SIGTERM) or FAILED when the block raises."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            self.callback.end("KILLED")
            raise
        except BaseException:
            self.callback.end("FAILED")
            raise

    def finish(
        self, result: TrainResult, exports: Mapping[str, ExportResult], register: str | None = None
    ) -> None:
        """Log the final evaluation, overlays and exported models, then end FINISHED."""
        cb = self.callback
        if cb.run_id is None:
            return
        epoch = int(result.metrics.get("epoch", 0))
        cb.log_metrics({f"final/{k}": v for k, v in result.metrics.items()}, step=epoch)
        if result.case_metrics is not None and not result.case_metrics.empty:
            cb.log_table(result.case_metrics, "case_metrics", "evaluation")
        self._log_overlays(result.module)
        for fmt, exported in exports.items():
            cb.log_file(exported.model, f"model/{fmt}")
            cb.log_file(exported.sidecar, f"model/{fmt}")
            log.debug("logged %s export %s", fmt, exported.model.name)
        client = cb.client
        if result.best_checkpoint is not None:
            client.set_tag(cb.run_id, "medai_lab.best_checkpoint", str(result.best_checkpoint))
        if register and exports:
            self._register(register)
        cb.flush()
        cb.end("FINISHED")

    def _log_overlays(self, module: Any) -> None:
        from medai_lab.tasks.overlay import overlay_figure

        for key, example in (getattr(module, "val_examples", None) or {}).items():
            title = f"{key}: {example['case']} Dice {example['dice']:.3f}"
            fig = overlay_figure(example, title=title)
            self.callback.log_figure(fig, f"{key}_case", "overlays")

    def _register(self, name: str) -> None:
        """Register ``model/`` of this run as a new version of ``name`` in the model registry."""
        from mlflow.exceptions import MlflowException

        cb = self.callback
        client = cb.client
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        source = client.get_run(cb.run_id).info.artifact_uri.rstrip("/") + "/model"
        client.create_model_version(name, source, run_id=cb.run_id)

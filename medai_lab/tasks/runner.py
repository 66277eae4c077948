"""The shared runner behind ``medai-lab train`` and the lung/liver/heart templates.

``train()`` composes the config, makes sure data is there (phantoms when none is given, the MSD
task when ``data.download`` is set), checks it, then fits with Lightning and reports per-case
metrics. Everything it writes goes under ``<out_dir>/<task>/``::

    data/phantoms-.../    phantoms written for this config (reused by later runs)
    checkpoints/          best-<epoch>.ckpt (on val/dice_mean) and last.ckpt (for --resume)
    cache/                PersistentDataset cache (data.cache: disk)

Torch, MONAI and Lightning are imported only once the inputs have been checked, so bad input
fails in well under a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.tasks.config import ConfigError, compose
from medai_lab.tasks.prepare import adopt_dataset_channels, adopt_dataset_labels, prepare_data
from medai_lab.tasks.result import TrainResult
from medai_lab.tasks.runtime import (
    TrainingError,
    lightning_output,
    oom_as_error,
    runtime_trainer,
)  # fmt: skip
from medai_lab.tasks.schema import TrainConfig

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from medai_lab.export import ExportResult
    from medai_lab.tasks.module import SegmentationModule
    from medai_lab.tasks.tracked import RunTracker

__all__ = [
    "TrainResult", "TrainingError", "dataset", "export_run", "runtime_trainer", "template", "train",
]  # fmt: skip

EXPORT_SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}


@dataclass(frozen=True)
class _Prepared:
    """The data step's output: a checked config, the cases and where the run writes."""

    cfg: TrainConfig
    data_dir: Path
    cases: list[dict[str, Any]]
    run_dir: Path
    last: Path


@dataclass
class _Fit:
    """The trainer step's output: everything a Lightning trainer and ``fit`` need."""

    cfg: TrainConfig  # with the run-time trainer settings resolved
    runtime: dict[str, Any]
    callbacks: list[Any]
    module: SegmentationModule
    datamodule: Any  # medai_lab.datasets.msd.SegmentationDataModule (built at run time)
    checkpoint: Any  # pytorch_lightning.callbacks.ModelCheckpoint
    tracker: RunTracker | None


def train(
    task: str,
    preset: str = "cpu",
    data: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | os.PathLike[str] = "runs",
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    logger: Any = None,
    track: bool | str = False,
    tracking_uri: str | None = None,
    export: Sequence[str] = (),
    register: str | None = None,
    command_line: Sequence[str] | None = None,
) -> TrainResult:
    """Train one task: data, trainer, fit and finish steps.

    Parameters
    ----------
    task
        ``lung``, ``liver``, ``heart`` or any task of :mod:`medai_lab.catalogue`.
    preset
        ``smoke``, ``cpu``, ``gpu`` or ``ddp`` (see ``configs/preset``).
    data
        MSD folder, imagesTr/labelsTr folder or CSV manifest; None writes phantoms for the task
        (``data.phantom``) under ``out_dir/<task>/data`` and reuses them on later runs. With
        ``data.download=true`` it is the folder to download the MSD task into.
    overrides
        ``key=value`` / ``--key value`` config overrides.
    out_dir
        Root of run folders.
    resume
        Continue from ``out_dir/<task>/checkpoints/last.ckpt`` (epoch, weights, optimiser,
        scheduler, random state). The config must match the interrupted run's.
    callbacks
        Extra Lightning callbacks.
    progress
        Lightning's progress bar, model summary and caching bars.
    logger
        A Lightning logger; None logs nothing (MLflow tracking is ``track``).
    track
        Track the run in MLflow: an experiment name, or True for ``medai-lab-<task>``.
    tracking_uri
        MLflow store; default ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    export
        Formats to export the evaluated model to (``torchscript``, ``onnx``), under
        ``<run_dir>/export/``; logged to the MLflow run when tracked.
    register
        Register the exported model under this name in the MLflow model registry.
    command_line
        ``argv`` for the run card (default ``sys.argv``).
    """
    start = time.perf_counter()
    prep = _data_step(task, preset, data, overrides, out_dir, resume, export, progress)
    fit = _trainer_step(prep, callbacks, resume, progress, track, tracking_uri, command_line)
    with lightning_output(progress, fit.callbacks) as bar:
        trainer = _lightning_trainer(fit, prep.run_dir, bar, progress, logger)
        ending = fit.tracker.ending_on_error() if fit.tracker else contextlib.nullcontext()
        with ending, oom_as_error(fit.cfg):
            _fit_step(trainer, fit, prep.last if resume else None)
            result = _finish_step(trainer, fit, prep, export, register)
    result.seconds = time.perf_counter() - start
    return result


def _data_step(
    task: str,
    preset: str,
    data: str | os.PathLike[str] | None,
    overrides: Sequence[str],
    out_dir: str | os.PathLike[str],
    resume: bool,
    export: Sequence[str],
    progress: bool,
) -> _Prepared:
    """Config, data on disk, cases checked (headers only): every clear error before torch."""
    cfg = compose(task, preset, overrides)
    run_dir = Path(out_dir) / task
    data_dir = prepare_data(cfg, data, run_dir, progress)
    cfg = adopt_dataset_channels(adopt_dataset_labels(cfg, data_dir), data_dir)

    from medai_lab.datasets.msd import check_cases, find_cases
    from medai_lab.export import FORMATS

    cases = find_cases(data_dir)
    check_cases(cases)
    unknown = [f for f in export if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise TrainingError(f"nothing to resume: {last} does not exist")
    if not resume:
        _clear_checkpoints(ckpt_dir)
    return _Prepared(cfg, data_dir, cases, run_dir, last)


def _trainer_step(
    prep: _Prepared,
    callbacks: Sequence[Any],
    resume: bool,
    progress: bool,
    track: bool | str,
    tracking_uri: str | None,
    command_line: Sequence[str] | None,
) -> _Fit:
    """Resolve the run-time trainer settings, seed, then build callbacks, module and data."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from medai_lab.datasets.msd import SegmentationDataModule
    from medai_lab.tasks.module import SegmentationModule

    cfg = prep.cfg
    runtime = runtime_trainer(cfg.trainer)
    resolved = {k: v for k, v in runtime.items() if k in cfg.trainer}
    cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, **resolved))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    t, ck = cfg.trainer, cfg.trainer.checkpoint
    checkpoint = ModelCheckpoint(
        dirpath=prep.last.parent,
        filename="best-{epoch:03d}",
        monitor=ck.monitor,
        mode=ck.mode,
        save_top_k=ck.save_top_k,
        save_last=True,
        auto_insert_metric_name=False,
    )
    cbs: list[Any] = [checkpoint, *callbacks]
    if t.early_stopping_patience > 0:
        cbs.append(EarlyStopping(ck.monitor, patience=t.early_stopping_patience, mode=ck.mode))
    tracker = None
    if track:
        from medai_lab.tasks.tracked import RunTracker

        experiment = track if isinstance(track, str) else f"medai-lab-{cfg.task.name}"
        tracker = RunTracker(
            cfg,
            prep.run_dir,
            prep.data_dir,
            prep.cases,
            experiment,
            tracking_uri,
            resume,
            command_line,
        )
        cbs.extend(tracker.callbacks)
    module = SegmentationModule(cfg)
    datamodule = SegmentationDataModule(
        cfg, prep.data_dir, cache_dir=prep.run_dir / "cache", progress=progress
    )
    return _Fit(cfg, runtime, cbs, module, datamodule, checkpoint, tracker)


def _lightning_trainer(
    fit: _Fit, run_dir: Path, bar: bool, progress: bool, logger: Any
) -> pl.Trainer:
    """The Lightning trainer of the trainer step (built inside ``lightning_output``)."""
    import pytorch_lightning as pl

    t = fit.cfg.trainer
    trainer = pl.Trainer(
        **fit.runtime,
        max_epochs=t.max_epochs,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        num_sanity_val_steps=t.num_sanity_val_steps,
        deterministic=t.deterministic,
        gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches,
        log_every_n_steps=t.log_every_n_steps,
        callbacks=fit.callbacks,
        logger=logger if logger is not None else False,
        enable_progress_bar=bar,
        enable_model_summary=progress,
        default_root_dir=str(run_dir),
        # Our EpochSampler shards by rank itself and keeps (seed, epoch) ordering.
        use_distributed_sampler=False,
    )
    if t.deterministic:
        import torch

        # Deterministic mode also fills every new tensor with NaN, a debugging aid that cost
        # 2-3 % of a CPU training step here; valid kernels stay deterministic without it
        # (PyTorch's docs on torch.utils.deterministic.fill_uninitialized_memory).
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    return trainer


def _fit_step(trainer: pl.Trainer, fit: _Fit, resume_from: Path | None) -> None:
    """Fit, then make sure the final metrics come from the weights ``final_eval`` names."""
    module, dm = fit.module, fit.datamodule
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
    best = fit.checkpoint.best_model_path or None
    evaluated = module.last_val_epoch
    if fit.cfg.trainer.final_eval == "best" and best and _ckpt_epoch(best) != evaluated:
        trainer.validate(module, datamodule=dm, ckpt_path=best, verbose=False)
    elif module.case_metrics.empty:
        trainer.validate(module, datamodule=dm, verbose=False)


def _finish_step(
    trainer: pl.Trainer, fit: _Fit, prep: _Prepared, export: Sequence[str], register: str | None
) -> TrainResult:
    """Collect the result, export the evaluated network and close the MLflow run."""
    from medai_lab.tasks.module import summarize_cases

    module, checkpoint, last = fit.module, fit.checkpoint, prep.last
    best = checkpoint.best_model_path or None
    metrics = summarize_cases(module.case_metrics, module.labels)
    if not module.case_metrics.empty:
        metrics["epoch"] = float(module.case_metrics["epoch"].iloc[0])
    if checkpoint.best_model_score is not None:
        metrics["best_score"] = float(checkpoint.best_model_score)
    result = TrainResult(
        config=fit.cfg,
        best_checkpoint=Path(best) if best else None,
        last_checkpoint=last if last.is_file() else None,
        metrics=metrics,
        case_metrics=module.case_metrics,
        module=module,
        data_dir=prep.data_dir,
        run_dir=prep.run_dir,
        train_cases=[str(c["case"]) for c in fit.datamodule.train_cases],
        val_cases=[str(c["case"]) for c in fit.datamodule.val_cases],
    )
    exports = export_run(result, export) if trainer.is_global_zero else {}
    result.exports = {fmt: e.model for fmt, e in exports.items()}
    if fit.tracker is not None:
        fit.tracker.finish(result, exports, register)
        result.mlflow_run_id = fit.tracker.run_id
    return result


def export_run(result: TrainResult, formats: Sequence[str]) -> dict[str, ExportResult]:
    """Export the evaluated network to ``<run_dir>/export/<format>/model.{ts,onnx}`` (+ .json)."""
    from medai_lab.export import export_model
    from medai_lab.tasks.module import export_contract

    out: dict[str, ExportResult] = {}
    for fmt in formats:
        path = Path(result.run_dir or ".") / "export" / fmt / f"model{EXPORT_SUFFIX[fmt]}"
        out[fmt] = export_model(result.module.net, export_contract(result.config), path, fmt)
    return out


def dataset(
    task: str,
    preset: str = "cpu",
    data: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    out_dir: str | os.PathLike[str] = "runs",
    progress: bool = True,
) -> Path:
    """The dataset folder ``train()`` with the same arguments will use (phantoms written now).

    Lets a notebook look at the data before training on it.
    """
    cfg = compose(task, preset, overrides)
    return prepare_data(cfg, data, Path(out_dir) / task, progress)


# --- internals -------------------------------------------------------------------------------


def _clear_checkpoints(ckpt_dir: Path) -> None:
    """A fresh run replaces this task's checkpoints (ours only: best-*.ckpt, last*.ckpt)."""
    if ckpt_dir.is_dir():
        for path in [*ckpt_dir.glob("best-*.ckpt"), *ckpt_dir.glob("last*.ckpt")]:
            path.unlink()


def _ckpt_epoch(path: str) -> int | None:
    match = re.search(r"best-(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def template(task: str) -> tuple[Callable[..., TrainResult], Callable[..., int]]:
    """``(train, main)`` bound to one task: what lung.py, liver.py and heart.py expose.

    The bound ``train`` tracks in MLflow and exports TorchScript unless told otherwise.
    """

    def train_task(
        preset: str = "cpu",
        data: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
        **kwargs: Any,
    ) -> TrainResult:
        kwargs.setdefault("track", True)
        kwargs.setdefault("export", ("torchscript",))
        return train(task, preset, data, overrides, **kwargs)

    def main_task(argv: Sequence[str] | None = None) -> int:
        from medai_lab.tasks.command import main

        return main(argv, task=task)

    train_task.__doc__ = f"Train the {task} model; see :func:`medai_lab.tasks.runner.train`."
    main_task.__doc__ = f"``medai-lab train {task}`` options; see ``--help``."
    return train_task, main_task

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
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.tasks.config import ConfigError, compose
from medai_lab.tasks.runtime import (
    TrainingError,
    lightning_output,
    oom_as_error,
    runtime_trainer,
)  # fmt: skip

__all__ = [
    "TrainResult", "TrainingError", "dataset", "export_run", "runtime_trainer", "template", "train",
]  # fmt: skip


@dataclass
class TrainResult:
    """What a training run produced.

    ``metrics`` holds ``dice_mean`` and ``dice/<label>``, ``hd95/<label>``, ``nsd/<label>`` of the
    final evaluation (best checkpoint unless ``trainer.final_eval: last``), plus ``epoch`` (the
    epoch those weights come from) and ``best_score``.
    """

    config: dict[str, Any]
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics: dict[str, float]
    case_metrics: Any  # pandas.DataFrame, one row per (case, label)
    module: Any  # SegmentationModule holding the evaluated weights
    data_dir: Path | None = None
    run_dir: Path | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


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
    """Train one task.

    Parameters
    ----------
    task
        ``lung``, ``liver`` or ``heart``.
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
    cfg = compose(task, preset, overrides)
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {cfg['seed']!r}")
    run_dir = Path(out_dir) / task
    data_dir = _prepare_data(cfg, data, run_dir, progress)
    _adopt_dataset_labels(cfg, data_dir)

    from medai_lab.datasets.msd import check_cases, find_cases
    from medai_lab.export import FORMATS

    cases = find_cases(data_dir)
    check_cases(cases)  # headers only: clear errors before anything heavy
    unknown = [f for f in export if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise TrainingError(f"nothing to resume: {last} does not exist")
    if not resume:
        _clear_checkpoints(ckpt_dir)

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from medai_lab.datasets.msd import SegmentationDataModule
    from medai_lab.tasks.module import SegmentationModule

    runtime = runtime_trainer(cfg["trainer"])
    cfg["trainer"].update({k: v for k, v in runtime.items() if k in cfg["trainer"]})
    seed = int(cfg["seed"])
    pl.seed_everything(seed, workers=True, verbose=False)
    tcfg = cfg["trainer"]
    ck = tcfg["checkpoint"]
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch:03d}",
        monitor=ck["monitor"],
        mode=ck["mode"],
        save_top_k=int(ck["save_top_k"]),
        save_last=True,
        auto_insert_metric_name=False,
    )
    cbs: list[Any] = [checkpoint, *callbacks]
    if int(tcfg["early_stopping_patience"]) > 0:
        cbs.append(
            EarlyStopping(
                ck["monitor"], patience=int(tcfg["early_stopping_patience"]), mode=ck["mode"]
            )
        )
    tracker = None
    if track:
        from medai_lab.tasks.tracked import RunTracker

        experiment = track if isinstance(track, str) else f"medai-lab-{task}"
        tracker = RunTracker(
            cfg, run_dir, data_dir, cases, experiment, tracking_uri, resume, command_line
        )
        cbs.extend(tracker.callbacks)
    module = SegmentationModule(cfg)
    datamodule = SegmentationDataModule(
        cfg, data_dir, cache_dir=run_dir / "cache", progress=progress
    )
    with lightning_output(progress, cbs) as bar:
        trainer = pl.Trainer(
            **runtime,
            max_epochs=int(tcfg["max_epochs"]),
            check_val_every_n_epoch=int(tcfg["check_val_every_n_epoch"]),
            num_sanity_val_steps=int(tcfg["num_sanity_val_steps"]),
            deterministic=bool(tcfg["deterministic"]),
            gradient_clip_val=tcfg["gradient_clip_val"],
            accumulate_grad_batches=int(tcfg["accumulate_grad_batches"]),
            log_every_n_steps=int(tcfg["log_every_n_steps"]),
            callbacks=cbs,
            logger=logger if logger is not None else False,
            enable_progress_bar=bar,
            enable_model_summary=progress,
            default_root_dir=str(run_dir),
            # Our EpochSampler shards by rank itself and keeps (seed, epoch) ordering.
            use_distributed_sampler=False,
        )
        ending = tracker.ending_on_error() if tracker else contextlib.nullcontext()
        with ending, oom_as_error(cfg):
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
            best = checkpoint.best_model_path or None
            evaluated = module.last_val_epoch
            if tcfg["final_eval"] == "best" and best and _ckpt_epoch(best) != evaluated:
                trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)
            elif module.case_metrics.empty:
                trainer.validate(module, datamodule=datamodule, verbose=False)
            result = _result(cfg, checkpoint, last, module, datamodule, data_dir, run_dir)
            exports = export_run(result, export) if trainer.is_global_zero else {}
            result.extra["exports"] = {fmt: e.model for fmt, e in exports.items()}
            if tracker is not None:
                tracker.finish(result, exports, register)
                result.extra["mlflow_run_id"] = tracker.run_id
    result.seconds = time.perf_counter() - start
    return result


def export_run(result: TrainResult, formats: Sequence[str]) -> dict[str, Any]:
    """Export the evaluated network to ``<run_dir>/export/<format>/model.{ts,onnx}`` (+ .json)."""
    from medai_lab.export import export_model
    from medai_lab.tasks.module import export_contract

    out: dict[str, Any] = {}
    for fmt in formats:
        path = Path(result.run_dir or ".") / "export" / fmt / f"model{EXPORT_SUFFIX[fmt]}"
        out[fmt] = export_model(result.module.net, export_contract(result.config), path, fmt)
    return out


EXPORT_SUFFIX = {"torchscript": ".ts", "onnx": ".onnx"}


def _result(
    cfg: dict[str, Any],
    checkpoint: Any,
    last: Path,
    module: Any,
    datamodule: Any,
    data_dir: Path,
    run_dir: Path,
) -> TrainResult:
    from medai_lab.tasks.module import summarize_cases

    best = checkpoint.best_model_path or None
    metrics = summarize_cases(module.case_metrics, module.labels)
    if not module.case_metrics.empty:
        metrics["epoch"] = float(module.case_metrics["epoch"].iloc[0])
    if checkpoint.best_model_score is not None:
        metrics["best_score"] = float(checkpoint.best_model_score)
    return TrainResult(
        config=cfg,
        best_checkpoint=Path(best) if best else None,
        last_checkpoint=last if last.is_file() else None,
        metrics=metrics,
        case_metrics=module.case_metrics,
        module=module,
        data_dir=data_dir,
        run_dir=run_dir,
        extra={
            "train_cases": [c["case"] for c in datamodule.train_cases],
            "val_cases": [c["case"] for c in datamodule.val_cases],
        },
    )


# --- internals -------------------------------------------------------------------------------


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
    return _prepare_data(cfg, data, Path(out_dir) / task, progress)


def _prepare_data(
    cfg: dict[str, Any], data: str | os.PathLike[str] | None, run_dir: Path, progress: bool
) -> Path:
    """The dataset folder/manifest to train on, writing phantoms or downloading when needed."""
    from medai_lab.datasets.msd import download_msd

    dcfg, task = cfg["data"], cfg["task"]
    if dcfg["download"]:
        root = Path(data) if data is not None else _user_cache() / "msd"
        if (root / "dataset.json").is_file():
            return root
        target = root / task["msd_task"]
        _once(target, lambda: download_msd(task["msd_task"], root))
        return target
    if data is not None:
        return Path(data)
    ph = dcfg["phantom"]
    shape = tuple(int(n) for n in ph["shape"])
    spacing = tuple(float(s) for s in ph["spacing"])
    key = "x".join(map(str, shape)) + "-" + "x".join(f"{s:g}" for s in spacing)
    folder = run_dir / "data" / f"phantoms-{int(ph['cases'])}-seed{int(ph['seed'])}-{key}"

    def write() -> None:
        from medai_lab.datasets.phantom import write_phantom_dataset

        write_phantom_dataset(
            folder,
            task["name"],
            int(ph["cases"]),
            seed=int(ph["seed"]),
            shape=shape,
            spacing=spacing,
            progress=progress,
        )

    _once(folder, write)
    return folder


def _once(folder: Path, make: Any, timeout_s: float = 7200.0) -> None:
    """Create ``folder`` (ending with a dataset.json) in one process per node; others wait."""
    if (folder / "dataset.json").is_file():
        return
    if int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))) == 0:
        make()
        return
    deadline = time.monotonic() + timeout_s
    while not (folder / "dataset.json").is_file():
        if time.monotonic() > deadline:
            raise TrainingError(f"timed out waiting for rank 0 to prepare {folder}")
        time.sleep(2.0)


def _adopt_dataset_labels(cfg: dict[str, Any], data_dir: Path) -> None:
    """Real MSD labels differ from our phantoms' (e.g. lung: tumour only): follow the data."""
    from medai_lab.datasets.msd import dataset_labels

    labels = dataset_labels(data_dir) if data_dir.is_dir() else None
    current = {int(k): str(v) for k, v in cfg["task"]["labels"].items()}
    if labels and labels != current:
        warnings.warn(f"using the labels of {data_dir / 'dataset.json'}: {labels}", stacklevel=3)
        cfg["task"]["labels"] = labels


def _clear_checkpoints(ckpt_dir: Path) -> None:
    """A fresh run replaces this task's checkpoints (ours only: best-*.ckpt, last*.ckpt)."""
    if ckpt_dir.is_dir():
        for path in [*ckpt_dir.glob("best-*.ckpt"), *ckpt_dir.glob("last*.ckpt")]:
            path.unlink()


def _ckpt_epoch(path: str) -> int | None:
    match = re.search(r"best-(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def _user_cache() -> Path:
    """``$MEDAI_LAB_CACHE``, else ``$XDG_CACHE_HOME/medai-lab``, else ``~/.cache/medai-lab``."""
    if os.environ.get("MEDAI_LAB_CACHE"):
        return Path(os.environ["MEDAI_LAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medai-lab"


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

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

import argparse
import contextlib
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError
from medai_lab.tasks.config import TASKS, ConfigError, compose
from medai_lab.tasks.runtime import TrainingError, oom_as_error, runtime_trainer

__all__ = ["TrainResult", "TrainingError", "format_result", "main", "runtime_trainer", "train"]


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
        A Lightning logger (e.g. MLflow's); None logs nothing.
    """
    start = time.perf_counter()
    cfg = compose(task, preset, overrides)
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ConfigError(f"seed must be a whole number >= 0, got {cfg['seed']!r}")
    run_dir = Path(out_dir) / task
    data_dir = _prepare_data(cfg, data, run_dir, progress)
    _adopt_dataset_labels(cfg, data_dir)

    from medai_lab.datasets.msd import check_cases, find_cases

    check_cases(find_cases(data_dir))  # headers only: clear errors before anything heavy
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume and not last.is_file():
        raise TrainingError(f"nothing to resume: {last} does not exist")
    if not resume:
        _clear_checkpoints(ckpt_dir)

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from medai_lab.datasets.msd import SegmentationDataModule
    from medai_lab.tasks.module import SegmentationModule, summarize_cases

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
    module = SegmentationModule(cfg)
    datamodule = SegmentationDataModule(
        cfg, data_dir, cache_dir=run_dir / "cache", progress=progress
    )
    with _quiet_lightning(progress):
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
            enable_progress_bar=progress,
            enable_model_summary=progress,
            default_root_dir=str(run_dir),
            # Our EpochSampler shards by rank itself and keeps (seed, epoch) ordering.
            use_distributed_sampler=False,
        )
        with oom_as_error(cfg):
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
            best = checkpoint.best_model_path or None
            evaluated = module.last_val_epoch
            if tcfg["final_eval"] == "best" and best and _ckpt_epoch(best) != evaluated:
                trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)
            elif module.case_metrics.empty:
                trainer.validate(module, datamodule=datamodule, verbose=False)
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
        seconds=time.perf_counter() - start,
        extra={
            "train_cases": [c["case"] for c in datamodule.train_cases],
            "val_cases": [c["case"] for c in datamodule.val_cases],
        },
    )


def main(argv: Sequence[str] | None = None, task: str | None = None) -> int:
    """Command line: ``[TASK] [--preset P] [--data DIR] [--out DIR] [--resume] [overrides]``."""
    parser = argparse.ArgumentParser(
        prog=f"medai-lab train{' ' + task if task else ''}",
        description="Train a segmentation model; extra key=value / --key value are overrides.",
    )
    if task is None:
        parser.add_argument("task", choices=TASKS)
    parser.add_argument("--preset", default="cpu", help="smoke | cpu | gpu | ddp (default cpu)")
    parser.add_argument("--data", help="MSD folder, imagesTr/labelsTr folder or CSV manifest")
    parser.add_argument("--out", default="runs", help="run folder root (default ./runs)")
    parser.add_argument("--resume", action="store_true", help="continue from last.ckpt")
    parser.add_argument("--download", action="store_true", help="fetch the MSD task (network)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args, rest = parser.parse_known_args(argv)
    overrides = [*rest, *(["data.download=true"] if args.download else [])]
    try:
        result = train(
            task or args.task,
            args.preset,
            args.data,
            overrides,
            out_dir=args.out,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except MedaiError as exc:
        print(f"medai-lab: error: {exc}", file=sys.stderr)
        return 2
    print(format_result(result))
    return 0


def format_result(result: TrainResult) -> str:
    """One line per label plus the checkpoint: what a user wants after training."""
    m, labels = result.metrics, result.module.labels
    lines = [
        f"{result.config['task']['name']}: mean Dice {m.get('dice_mean', float('nan')):.3f}"
        f" ({result.seconds:.0f} s)"
    ]
    for name in labels.values():
        lines.append(
            f"  {name:<12} Dice {m[f'dice/{name}']:.3f}  HD95 {m[f'hd95/{name}']:.1f} mm  "
            f"NSD {m[f'nsd/{name}']:.3f}"
        )
    lines.append(f"  best checkpoint: {result.best_checkpoint}")
    return "\n".join(lines)


# --- internals -------------------------------------------------------------------------------


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


@contextlib.contextmanager
def _quiet_lightning(progress: bool) -> Iterator[None]:
    """Without progress output, silence Lightning's info lines (GPU available, ...) too."""
    import logging

    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    old = [lg.level for lg in loggers]
    if not progress:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def template(task: str) -> tuple[Callable[..., TrainResult], Callable[..., int]]:
    """``(train, main)`` bound to one task: what lung.py, liver.py and heart.py expose."""

    def train_task(
        preset: str = "cpu",
        data: str | os.PathLike[str] | None = None,
        overrides: Sequence[str] = (),
        **kwargs: Any,
    ) -> TrainResult:
        return train(task, preset, data, overrides, **kwargs)

    def main_task(argv: Sequence[str] | None = None) -> int:
        return main(argv, task=task)

    train_task.__doc__ = f"Train the {task} model; see :func:`medai_lab.tasks.runner.train`."
    main_task.__doc__ = (
        f"``[--preset P] [--data DIR] [--out DIR] [--resume] [overrides]`` for {task}."
    )
    return train_task, main_task

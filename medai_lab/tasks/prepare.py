"""The data step of a training run: the dataset folder, written or downloaded when needed.

No torch here: phantoms and the MSD download import their own heavy modules on use.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from medai_lab.tasks.runtime import TrainingError
from medai_lab.tasks.schema import TrainConfig

__all__ = ["adopt_dataset_labels", "prepare_data", "user_cache"]


def prepare_data(
    cfg: TrainConfig, data: str | os.PathLike[str] | None, run_dir: Path, progress: bool
) -> Path:
    """The dataset folder/manifest to train on, writing phantoms or downloading when needed."""
    from medai_lab.datasets.msd import download_msd

    task = cfg.task
    if cfg.data.download:
        root = Path(data) if data is not None else user_cache() / "msd"
        if (root / "dataset.json").is_file():
            return root
        msd = task.msd_task
        if msd is None:
            raise TrainingError(f"task {task.name} names no msd_task to download")
        target = root / msd
        _once(target, lambda: download_msd(msd, root))
        return target
    if data is not None:
        return Path(data)
    ph = cfg.data.phantom
    key = "x".join(map(str, ph.shape)) + "-" + "x".join(f"{s:g}" for s in ph.spacing)
    folder = run_dir / "data" / f"phantoms-{ph.cases}-seed{ph.seed}-{key}"

    def write() -> None:
        from medai_lab.datasets.phantom import write_phantom_dataset

        write_phantom_dataset(
            folder,
            task.name,
            ph.cases,
            seed=ph.seed,
            shape=ph.shape,
            spacing=ph.spacing,
            progress=progress,
        )

    _once(folder, write)
    return folder


def adopt_dataset_labels(cfg: TrainConfig, data_dir: Path) -> TrainConfig:
    """Real MSD labels differ from our phantoms' (e.g. lung: tumour only): follow the data."""
    from medai_lab.datasets.msd import dataset_labels

    labels = dataset_labels(data_dir) if data_dir.is_dir() else None
    if labels and labels != cfg.task.labels:
        warnings.warn(f"using the labels of {data_dir / 'dataset.json'}: {labels}", stacklevel=4)
        return dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, labels=dict(labels)))
    return cfg


def adopt_dataset_channels(cfg: TrainConfig, data_dir: Path) -> TrainConfig:
    """4-D images train with their chosen frames as channels: ``in_channels`` follows the data
    (``data.frames``, else the choice recorded in dataset.json, else every frame), and the
    choice is written into ``data.frames`` so the model contract carries it to inference."""
    from medai_lab.datasets.frames import dataset_channels, frames_choice, spec_text

    if not data_dir.is_dir():
        return cfg
    chosen = spec_text(frames_choice(data_dir, cfg.data.frames))
    frames = None if chosen == "all" else chosen
    channels = dataset_channels(data_dir, cfg.data.frames)
    if channels == cfg.task.in_channels and frames == cfg.data.frames:
        return cfg
    return dataclasses.replace(
        cfg,
        task=dataclasses.replace(cfg.task, in_channels=channels),
        data=dataclasses.replace(cfg.data, frames=frames),
    )


def user_cache() -> Path:
    """``$MEDAI_LAB_CACHE``, else ``$XDG_CACHE_HOME/medai-lab``, else ``~/.cache/medai-lab``."""
    if os.environ.get("MEDAI_LAB_CACHE"):
        return Path(os.environ["MEDAI_LAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medai-lab"


def _once(folder: Path, make: Callable[[], object], timeout_s: float = 7200.0) -> None:
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

"""Typed, frozen views of a composed training config, validated once.

:func:`medai_lab.tasks.config.compose` merges YAML into a plain dict and hands it to
:meth:`TrainConfig.from_dict`, which checks every value (one :class:`ConfigError` line naming
the key) and returns these views. Code reads attributes (``cfg.trainer.max_epochs``); the views
also answer ``cfg["trainer"]["max_epochs"]`` with the plain YAML value (lists, dicts), so
notebooks and code written against the dict keep working, and :meth:`View.as_dict` gives the
plain dict back for logging. A changed copy is ``dataclasses.replace(cfg.trainer, ...)``.
The checks themselves live in :mod:`medai_lab.tasks.schema_check`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import medai_lab.tasks`` stays as light as before
    from medai_lab.contract import Intensity


class View(Mapping[str, Any]):
    """Read-only mapping access for code that reads by key; attributes are the typed API."""

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key.startswith("_") or key not in self._names():
            raise KeyError(key)
        return _plain(getattr(self, key), keep_views=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The plain nested dict (YAML types only), e.g. for logging or a checkpoint."""
        return {k: _plain(self[k]) for k in self}


@dataclass(frozen=True, eq=False)
class TaskConfig(View):
    """``task``: one catalogue entry plus the voxel size and patch size it is trained at."""

    name: str
    modality: str
    labels: dict[int, str]
    intensity: Intensity
    spacing: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    in_channels: int = 1
    msd_task: str | None = None
    foreground_threshold: float | None = None
    keep_largest: tuple[int, ...] = ()
    phantom: dict[str, Any] | None = None
    launcher: dict[str, Any] | None = None  # the launcher card (read by medai_lab.server)


@dataclass(frozen=True, eq=False)
class ModelConfig(View):
    """``model``: the network's ``name``; every other key is a keyword of its constructor."""

    name: str
    params: dict[str, Any]

    def _names(self) -> tuple[str, ...]:
        return ("name", *self.params)

    def __getitem__(self, key: str) -> Any:
        if key in self.params:
            return _plain(self.params[key])
        if key == "name":
            return self.name
        raise KeyError(key)


@dataclass(frozen=True, eq=False)
class LossConfig(View):
    lambda_dice: float
    lambda_ce: float
    include_background: bool
    batch: bool
    class_weights: tuple[float, ...] | None


@dataclass(frozen=True, eq=False)
class SchedulerConfig(View):
    name: str
    warmup_epochs: int
    min_lr_ratio: float
    power: float


@dataclass(frozen=True, eq=False)
class OptimConfig(View):
    name: str
    lr: float
    weight_decay: float
    momentum: float
    nesterov: bool
    scheduler: SchedulerConfig


@dataclass(frozen=True, eq=False)
class AugmentConfig(View):
    flip_prob: float
    flip_axes: tuple[int, ...]
    rot90_prob: float
    intensity_shift: float
    intensity_prob: float


@dataclass(frozen=True, eq=False)
class PhantomConfig(View):
    cases: int
    seed: int
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class DataConfig(View):
    cache: str
    cache_dir: str | None
    loader: str
    batch_size: int
    num_workers: int
    samples_per_volume: int
    crop: str
    pos: float
    neg: float
    class_ratios: tuple[float, ...] | None
    val_fraction: float
    augment: AugmentConfig
    download: bool
    phantom: PhantomConfig
    # 4-D images: which frames become channels (checked by medai_lab.datasets.frames)
    frames: str | int | list[int] | None = None


@dataclass(frozen=True, eq=False)
class CheckpointConfig(View):
    monitor: str
    mode: str
    save_top_k: int


@dataclass(frozen=True, eq=False)
class TrainerConfig(View):
    """``trainer``: Lightning settings; ``auto`` values are resolved by ``runtime_trainer``."""

    accelerator: str
    devices: int | str | list[int]
    num_nodes: int | str
    strategy: str
    precision: int | str
    max_epochs: int
    check_val_every_n_epoch: int
    num_sanity_val_steps: int
    deterministic: bool
    benchmark: bool
    gradient_clip_val: float | None
    accumulate_grad_batches: int
    log_every_n_steps: int
    early_stopping_patience: int
    final_eval: str
    checkpoint: CheckpointConfig


@dataclass(frozen=True, eq=False)
class EvalConfig(View):
    sw_batch_size: int
    overlap: float
    mode: str
    postprocess: bool
    nsd_tolerance: float


@dataclass(frozen=True, eq=False)
class TrainConfig(View):
    """One run's config; ``preset`` and ``choices`` (group -> option) say how it was built."""

    preset: str | None
    seed: int
    loss: LossConfig
    task: TaskConfig
    model: ModelConfig
    optim: OptimConfig
    data: DataConfig
    trainer: TrainerConfig
    eval: EvalConfig
    choices: dict[str, str]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainConfig:
        """Validate a composed (or checkpointed) plain config; one error line on a bad value."""
        if isinstance(raw, TrainConfig):
            return raw
        from medai_lab.tasks.schema_check import build

        return build(raw)


def _plain(value: Any, keep_views: bool = False) -> Any:
    """YAML types: views become dicts (unless kept), tuples lists, the intensity its dict."""
    if isinstance(value, View):
        return value if keep_views else value.as_dict()
    if hasattr(value, "to_dict"):  # the task's contract.Intensity
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

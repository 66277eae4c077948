"""Typed, frozen views of a composed training config, validated once.

:func:`medai_lab.tasks.config.compose` merges YAML into a plain dict and hands it to
:meth:`TrainConfig.from_dict`, which checks every value (one :class:`ConfigError` line naming
the key) and returns these views. Code reads attributes (``cfg.trainer.max_epochs``); the views
also answer ``cfg["trainer"]["max_epochs"]`` with the plain YAML value (lists, dicts), so
notebooks and code written against the dict keep working, and :meth:`View.as_dict` gives the
plain dict back for logging. A changed copy is ``dataclasses.replace(cfg.trainer, ...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from medai_lab.contract import INTENSITY_MODES, Intensity
from medai_lab.errors import MedaiError

T = TypeVar("T")


class ConfigError(MedaiError):
    """A config key, group option, preset or override value is not valid."""


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
        r = _Reader(raw, "")
        model = r.section("model")
        cfg = cls(
            preset=r.opt_text("preset"),
            seed=r.whole("seed", low=0, what="a whole number >= 0"),
            loss=_loss(r.section("loss")),
            task=_task(r.section("task")),
            model=ModelConfig(model.text("name"), _params(model.raw)),
            optim=_optim(r.section("optim")),
            data=_data(r.section("data")),
            trainer=_trainer(r.section("trainer")),
            eval=_eval(r.section("eval")),
            choices={str(k): str(v) for k, v in (raw.get("choices") or {}).items()},
        )
        _no_unknown(raw, cfg.as_dict(), "")
        return cfg


# --- validation ------------------------------------------------------------------------------


class _Reader:
    """Typed reads of one section; every failure names the full dotted key."""

    def __init__(self, raw: Any, prefix: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"config key {prefix.rstrip('.')!r} must be a section")
        self.raw, self.prefix = raw, prefix

    def _bad(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key} must be {what}, got {self.raw.get(key)!r}")

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self.raw:
            if default is ...:
                raise ConfigError(f"config key {self.prefix + key!r} is missing")
            return default
        return self.raw[key]

    def section(self, key: str) -> _Reader:
        return _Reader(self.get(key), f"{self.prefix}{key}.")

    def whole(self, key: str, low: int = 0, what: str = "", default: Any = ...) -> int:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise self._bad(key, what or f"a whole number >= {low}")
        return v

    def real(self, key: str, low: float = 0.0, high: float | None = None) -> float:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < low:
            raise self._bad(key, f"a number >= {low:g}")
        if high is not None and v > high:
            raise self._bad(key, f"a number from {low:g} to {high:g}")
        return float(v)

    def opt_real(self, key: str) -> float | None:
        v = self.get(key, None)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise self._bad(key, "a number or null")
        return None if v is None else float(v)

    def flag(self, key: str) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false")
        return v

    def text(self, key: str, choices: tuple[str, ...] = ()) -> str:
        v = self.get(key)
        if not isinstance(v, str) or (choices and v not in choices):
            raise self._bad(key, " | ".join(choices) if choices else "a text")
        return v

    def opt_text(self, key: str) -> str | None:
        v = self.get(key, None)
        if v is not None and not isinstance(v, str):
            raise self._bad(key, "a text or null")
        return v

    def numbers(self, key: str, kind: type[T], n: int | None = None, default: Any = ...) -> Any:
        """A list of ``kind`` (``n`` long when given) as a tuple; null stays None."""
        v = self.get(key, default)
        if v is None:
            return None
        ok = isinstance(v, list | tuple) and (n is None or len(v) == n)
        ok = ok and all(
            not isinstance(x, bool) and isinstance(x, int if kind is int else int | float)
            for x in v
        )
        if not ok:
            count = f"{n} " if n else ""
            raise self._bad(key, f"a list of {count}{'whole ' if kind is int else ''}numbers")
        return tuple(kind(x) for x in v)  # type: ignore[call-arg]

    def auto_or_whole(self, key: str) -> int | str:
        v = self.get(key)
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        raise self._bad(key, "a whole number or auto")


def _positive(r: _Reader, key: str, n: int, kind: type) -> Any:
    values = r.numbers(key, kind, n)
    if values is None or any(v <= 0 for v in values):
        raise r._bad(key, f"a list of {n} positive numbers")
    return values


def _params(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in raw.items() if k != "name"}


def _task(r: _Reader) -> TaskConfig:
    labels = r.get("labels")
    if not isinstance(labels, Mapping) or not labels:
        raise r._bad("labels", "a mapping of label values to names")
    try:
        label_map = {int(k): str(v) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise r._bad("labels", "a mapping of label values to names") from None
    ir = r.section("intensity")
    mode = ir.text("mode", INTENSITY_MODES)
    intensity = (
        Intensity(mode, ir.opt_real("a_min"), ir.opt_real("a_max"))
        if mode == "ct_window"
        else Intensity(mode)
    )
    if mode == "ct_window" and (intensity.a_min is None or intensity.a_max is None):
        raise ConfigError(f"{ir.prefix}a_min and a_max are needed for a ct_window")
    phantom = r.get("phantom", None)
    return TaskConfig(
        name=r.text("name"),
        modality=r.text("modality"),
        labels=label_map,
        intensity=intensity,
        spacing=_positive(r, "spacing", 3, float),
        patch_size=_positive(r, "patch_size", 3, int),
        in_channels=r.whole("in_channels", low=1, default=1),
        msd_task=r.opt_text("msd_task"),
        foreground_threshold=r.opt_real("foreground_threshold"),
        keep_largest=r.numbers("keep_largest", int, default=[]) or (),
        phantom=dict(phantom) if isinstance(phantom, Mapping) else None,
    )


def _loss(r: _Reader) -> LossConfig:
    return LossConfig(
        r.real("lambda_dice"),
        r.real("lambda_ce"),
        r.flag("include_background"),
        r.flag("batch"),
        r.numbers("class_weights", float),
    )


def _optim(r: _Reader) -> OptimConfig:
    s = r.section("scheduler")
    return OptimConfig(
        name=r.text("name", ("adamw", "sgd")),
        lr=r.real("lr"),
        weight_decay=r.real("weight_decay"),
        momentum=r.real("momentum", high=1.0),
        nesterov=r.flag("nesterov"),
        scheduler=SchedulerConfig(
            s.text("name", ("cosine", "poly", "none")),
            s.whole("warmup_epochs"),
            s.real("min_lr_ratio", high=1.0),
            s.real("power"),
        ),
    )


def _data(r: _Reader) -> DataConfig:
    a, p = r.section("augment"), r.section("phantom")
    return DataConfig(
        cache=r.text("cache", ("none", "memory", "disk")),
        cache_dir=r.opt_text("cache_dir"),
        loader=r.text("loader", ("thread", "torch")),
        batch_size=r.whole("batch_size", low=1),
        num_workers=r.whole("num_workers"),
        samples_per_volume=r.whole("samples_per_volume", low=1),
        crop=r.text("crop", ("posneg", "classes")),
        pos=r.real("pos"),
        neg=r.real("neg"),
        class_ratios=r.numbers("class_ratios", float),
        val_fraction=r.real("val_fraction", high=1.0),
        augment=AugmentConfig(
            a.real("flip_prob", high=1.0),
            a.numbers("flip_axes", int),
            a.real("rot90_prob", high=1.0),
            a.real("intensity_shift"),
            a.real("intensity_prob", high=1.0),
        ),
        download=r.flag("download"),
        phantom=PhantomConfig(
            p.whole("cases", low=1),
            p.whole("seed"),
            _positive(p, "shape", 3, int),
            _positive(p, "spacing", 3, float),
        ),
    )


def _trainer(r: _Reader) -> TrainerConfig:
    c = r.section("checkpoint")
    devices = r.get("devices")
    if isinstance(devices, bool) or not isinstance(devices, int | str | list):
        raise r._bad("devices", "a count, a list of device indices or auto")
    precision = r.get("precision")
    if isinstance(precision, bool) or not isinstance(precision, int | str):
        raise r._bad("precision", "a Lightning precision such as 32-true or auto")
    return TrainerConfig(
        accelerator=r.text("accelerator"),
        devices=devices,
        num_nodes=r.auto_or_whole("num_nodes"),
        strategy=r.text("strategy"),
        precision=precision,
        max_epochs=r.whole("max_epochs", low=1),
        check_val_every_n_epoch=r.whole("check_val_every_n_epoch", low=1),
        num_sanity_val_steps=r.whole("num_sanity_val_steps"),
        deterministic=r.flag("deterministic"),
        benchmark=r.flag("benchmark"),
        gradient_clip_val=r.opt_real("gradient_clip_val"),
        accumulate_grad_batches=r.whole("accumulate_grad_batches", low=1),
        log_every_n_steps=r.whole("log_every_n_steps", low=1),
        early_stopping_patience=r.whole("early_stopping_patience"),
        final_eval=r.text("final_eval", ("best", "last")),
        checkpoint=CheckpointConfig(
            c.text("monitor"), c.text("mode", ("min", "max")), c.whole("save_top_k", low=-1)
        ),
    )


def _eval(r: _Reader) -> EvalConfig:
    return EvalConfig(
        sw_batch_size=r.whole("sw_batch_size", low=1),
        overlap=r.real("overlap", high=0.99),
        mode=r.text("mode", ("constant", "gaussian")),
        postprocess=r.flag("postprocess"),
        nsd_tolerance=r.real("nsd_tolerance"),
    )


def _no_unknown(raw: Mapping[str, Any], known: Mapping[str, Any], prefix: str) -> None:
    """Keys the views do not hold would be dropped silently: name the first one instead."""
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"unknown config key {prefix + str(key)!r}")
        if isinstance(value, Mapping) and isinstance(known[key], Mapping) and key != "labels":
            _no_unknown(value, known[key], f"{prefix}{key}.")


def _plain(value: Any, keep_views: bool = False) -> Any:
    """YAML types: views become dicts (unless kept), tuples lists, the intensity its dict."""
    if isinstance(value, View):
        return value if keep_views else value.as_dict()
    if isinstance(value, Intensity):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

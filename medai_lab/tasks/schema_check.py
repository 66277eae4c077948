"""Validation of a plain config dict into the views of :mod:`medai_lab.tasks.schema`.

Every value is checked once, by kind and range; a failure is one :class:`ConfigError` line that
names the full dotted key (``trainer.max_epochs must be a whole number >= 1, got 'abc'``).
Semantic checks that need a library (frame choices, model arguments) stay where the value is
used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from medai_lab.tasks.config import ConfigError
from medai_lab.tasks.schema import (
    AugmentConfig,
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    PhantomConfig,
    SchedulerConfig,
    TaskConfig,
    TrainConfig,
    TrainerConfig,
)

T = TypeVar("T")


def build(raw: Mapping[str, Any]) -> TrainConfig:
    """The typed views of a plain config dict; :class:`ConfigError` naming the first bad key."""
    r = _Reader(raw, "")
    model = r.section("model")
    cfg = TrainConfig(
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
    from medai_lab.contract import INTENSITY_MODES, Intensity

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
    phantom, launcher = r.get("phantom", None), r.get("launcher", None)
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
        launcher=dict(launcher) if isinstance(launcher, Mapping) else None,
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
        frames=_frames(r),
        phantom=PhantomConfig(
            p.whole("cases", low=1),
            p.whole("seed"),
            _positive(p, "shape", 3, int),
            _positive(p, "spacing", 3, float),
        ),
    )


def _frames(r: _Reader) -> str | int | list[int] | None:
    v = r.get("frames", None)
    ok = v is None or isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))
    if not ok and not (isinstance(v, list) and all(type(i) is int for i in v)):
        raise r._bad("frames", "all, a frame index, a list of indices or axis=value")
    return list(v) if isinstance(v, list) else v


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

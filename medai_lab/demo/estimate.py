"""How long training takes on *this* machine, from a few timed steps of the real network.

A constant ("about 5 minutes on 2 cores") was 13-27 minutes on a shared 2-core machine: speed
depends on the CPU, its threads and whatever else runs. So the demo times a few optimiser steps
and sliding-window batches of the configured network right before training, and derives the
run's length from the config (cases, epochs, validation rounds, windows per volume).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medai_lab.tasks.schema import TrainConfig

# Lightning start-up, caching, export and MLflow logging per run, in units of the measured
# step time (they slow down with the machine like the steps do): 20 steps' worth was what the
# demo's runs spent beyond steps, validation and phantoms on a 2-core machine, idle or loaded.
SETUP_STEPS = 20


@dataclass(frozen=True)
class StepTimes:
    """Measured seconds of one optimiser step and one sliding-window batch (no grad)."""

    train_step_s: float
    infer_batch_s: float
    phantom_s: float = 0.3  # writing one phantom case (the demo measures it in its data part)


@dataclass(frozen=True)
class Estimate:
    """Predicted seconds of one training run and what they are made of."""

    epochs: int
    steps_per_epoch: int
    val_rounds: int
    val_cases: int
    seconds: float
    train_s: float
    val_s: float
    data_s: float

    def describe(self) -> str:
        """``6 epochs x 16 steps, 1 validation of 4 cases -> about 75 s``."""
        return (
            f"{self.epochs} epoch(s) x {self.steps_per_epoch} steps, {self.val_rounds} "
            f"validation(s) of {self.val_cases} cases -> about {format_duration(self.seconds)}"
        )


def format_duration(seconds: float) -> str:
    """``45 s``, ``3.5 min`` or ``1 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min"


def measure(cfg: TrainConfig, steps: int = 4) -> StepTimes:
    """Time ``steps`` optimiser steps and two inference batches of ``cfg``'s network.

    One warm-up step runs first (allocations, oneDNN kernel choice); the median is kept.
    """
    import torch

    from medai_lab.tasks.module import SegmentationModule

    module = SegmentationModule(cfg)
    net, loss_fn = module.net, module.loss_fn
    n_labels = max(module.labels) + 1
    batch = cfg.data.batch_size
    patch = list(cfg.task.patch_size)
    channels = cfg.task.in_channels
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, *patch, generator=gen)
    y = torch.randint(0, n_labels, (batch, 1, *patch), generator=gen).float()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    net.eval()
    sw = torch.randn(cfg.eval.sw_batch_size, channels, *patch, generator=gen)
    infer = []
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            net(sw)
            infer.append(time.perf_counter() - start)
    return StepTimes(_median(times[1:]), min(infer))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def windows_per_volume(cfg: TrainConfig) -> int:
    """Sliding windows over one phantom volume resampled to the task's spacing."""
    ph, task = cfg.data.phantom, cfg.task
    total = 1
    for n, sp, target, roi in zip(ph.shape, ph.spacing, task.spacing, task.patch_size, strict=True):
        size = math.ceil(n * sp / target)
        stride = max(1, int(roi * (1 - cfg.eval.overlap)))
        total *= 1 if size <= roi else math.ceil((size - roi) / stride) + 1
    return total


def estimate(
    cfg: TrainConfig | Mapping[str, Any], times: StepTimes, write_phantoms: bool = True
) -> Estimate:
    """Seconds ``train_and_evaluate`` needs for ``cfg`` at the measured speed.

    Training steps, validation rounds (sliding windows over every validation case), the final
    prediction of the validation cases from the export, and writing the phantoms.
    """
    from medai_lab.tasks.schema import TrainConfig

    cfg = TrainConfig.from_dict(cfg)  # a plain dict of the same shape is checked here
    d, t = cfg.data, cfg.trainer
    cases = d.phantom.cases
    n_val = min(max(1, round(cases * d.val_fraction)), max(1, cases - 1))
    n_train = max(1, cases - n_val)
    spe = math.ceil(n_train * d.samples_per_volume / d.batch_size)
    epochs = t.max_epochs
    rounds = max(1, epochs // max(1, t.check_val_every_n_epoch))
    batches = math.ceil(windows_per_volume(cfg) / cfg.eval.sw_batch_size)
    per_val_case = batches * times.infer_batch_s
    train_s = epochs * spe * times.train_step_s
    # validation rounds during training, plus the export's prediction of the same cases
    val_s = (rounds + 1) * n_val * per_val_case
    data_s = cases * times.phantom_s if write_phantoms else 0.0
    total = train_s + val_s + data_s + SETUP_STEPS * times.train_step_s
    return Estimate(epochs, spe, rounds, n_val, total, train_s, val_s, data_s)


def fit_epochs(
    cfg: TrainConfig, times: StepTimes, budget_s: float, lo: int = 1, hi: int = 12
) -> int:
    """The most epochs (``lo``..``hi``) whose estimate stays within ``budget_s``."""
    best = lo
    for epochs in range(lo, hi + 1):
        every = dataclasses.replace(cfg.trainer, max_epochs=epochs, check_val_every_n_epoch=epochs)
        trial = dataclasses.replace(cfg, trainer=every)
        if estimate(trial, times).seconds <= budget_s:
            best = epochs
    return best

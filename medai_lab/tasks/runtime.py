"""Machine-dependent training settings, chosen at run time rather than written in configs.

CUDA or not decides precision (bf16/fp16 AMP only on CUDA) and the cudnn autotuner; torchrun or
SLURM variables decide DDP processes per node and node count; CUDA out-of-memory becomes one
actionable line; what Lightning prints fits where it is shown. Torch is imported only when the
caller does not say whether CUDA is there.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from medai_lab.errors import MedaiError

if TYPE_CHECKING:
    from medai_lab.tasks.schema import TrainConfig, TrainerConfig


class TrainingError(MedaiError):
    """Training cannot start or continue (nothing to resume, out of GPU memory, ...)."""


def runtime_trainer(
    trainer: TrainerConfig,
    env: Mapping[str, str] | None = None,
    cuda: bool | None = None,
    bf16: bool | None = None,
) -> dict[str, Any]:
    """Trainer settings that depend on the machine: accelerator, devices, strategy, precision.

    ``precision: auto`` is bf16-mixed (16-mixed without bf16) when CUDA will be used, else
    32-true. ``devices``/``num_nodes: auto`` under DDP come from torchrun (LOCAL_WORLD_SIZE,
    WORLD_SIZE) or SLURM (SLURM_NTASKS_PER_NODE, SLURM_NNODES). DDP without CUDA and without a
    launcher falls back to one process, with a warning.
    """
    env = os.environ if env is None else env
    if cuda is None or bf16 is None:
        import torch

        cuda = torch.cuda.is_available() if cuda is None else cuda
        bf16 = (cuda and torch.cuda.is_bf16_supported()) if bf16 is None else bf16
    accelerator = trainer.accelerator
    use_cuda = bool(cuda) and accelerator in ("auto", "gpu", "cuda")
    precision = trainer.precision
    if precision == "auto":
        precision = ("bf16-mixed" if bf16 else "16-mixed") if use_cuda else "32-true"
    devices, num_nodes, strategy = trainer.devices, trainer.num_nodes, trainer.strategy
    per_node, nodes = _launcher_layout(env)
    if num_nodes == "auto":
        num_nodes = nodes or 1
    if devices == "auto" and per_node:
        devices = per_node
    if str(strategy).startswith("ddp") and not use_cuda and not per_node:
        warnings.warn(
            "DDP asked for but there is no CUDA and no torchrun/SLURM launcher: one process",
            stacklevel=2,
        )
        strategy, devices, num_nodes = "auto", 1, 1
    return {
        "accelerator": accelerator,
        "devices": devices,
        "num_nodes": int(num_nodes),
        "strategy": strategy,
        "precision": precision,
        # The cudnn autotuner picks kernels by timing: on CUDA only, and never when asked to be
        # deterministic (PyTorch would then ignore cudnn.deterministic).
        "benchmark": trainer.benchmark and use_cuda and not trainer.deterministic,
    }


@contextlib.contextmanager
def oom_as_error(cfg: TrainConfig) -> Iterator[None]:
    """CUDA out-of-memory becomes one actionable line."""
    try:
        yield
    except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(exc).lower():
            raise
        patch = "x".join(str(p) for p in cfg.task.patch_size)
        d = cfg.data
        raise TrainingError(
            f"CUDA ran out of memory with patch {patch}, batch {d.batch_size} x "
            f"{d.samples_per_volume} patches: try a smaller task.patch_size (e.g. "
            f"task.patch_size=[64,64,64]), data.batch_size=1 or fewer data.samples_per_volume"
        ) from exc


def _launcher_layout(env: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(processes per node, nodes) from torchrun or SLURM variables, or (None, None)."""
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:  # torchrun
        per_node = int(env["LOCAL_WORLD_SIZE"])
        return per_node, max(1, int(env["WORLD_SIZE"]) // max(1, per_node))
    nodes = env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES")
    per_node_raw = env.get("SLURM_NTASKS_PER_NODE")
    if nodes and (per_node_raw or env.get("SLURM_NTASKS")):
        n = int(nodes)
        # SLURM_NTASKS_PER_NODE may read "4(x2)"; the leading count is per node.
        lead = re.match(r"\d+", per_node_raw) if per_node_raw else None
        slurm_per_node = int(lead.group()) if lead else None
        return (slurm_per_node or max(1, int(env["SLURM_NTASKS"]) // n)), n
    return None, None


@contextlib.contextmanager
def lightning_output(progress: bool, callbacks: list[Any]) -> Iterator[bool]:
    """Around a fit: yields whether Lightning should draw its progress bar.

    Its bar (on stdout) is drawn where it is seen as one line (a terminal, a notebook); in a
    log one line per epoch is printed instead (a callback appended to ``callbacks``). Without
    ``progress`` Lightning's information lines (GPU available, ...) are silenced too. Known
    repeated third-party notices are dropped (:func:`medai_lab.progress.quiet_third_party`).
    """
    import logging
    import sys

    from medai_lab.progress import interactive, quiet_third_party

    bar = progress and interactive(sys.stdout)
    if progress and not bar:
        callbacks.append(_epoch_lines())
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    old = [lg.level for lg in loggers]
    if not progress:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        with quiet_third_party():
            yield bar
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def _epoch_lines() -> Any:
    """A Lightning callback that prints one line per epoch with its epoch-level metrics."""
    import pytorch_lightning as pl

    class EpochLines(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if not trainer.is_global_zero:
                return
            metrics = {k: v for k, v in trainer.callback_metrics.items() if "_step" not in k}
            shown = "  ".join(f"{k} {float(v):.4g}" for k, v in sorted(metrics.items()))
            print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}", flush=True)

    return EpochLines()

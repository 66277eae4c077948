"""From a training run to what runs the model: its :class:`~medai_lab.contract.ModelContract`
and its network loaded from a checkpoint.

Checkpoint loading lives here, where training lives; export and inference take the network
and the contract and never import the Lightning module. torch and Lightning are imported only
when a checkpoint is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.contract import Inference, ModelContract, frames_of
from medai_lab.errors import MedaiError

if TYPE_CHECKING:
    from medai_lab.tasks.schema import TrainConfig

__all__ = ["export_contract", "load_network", "model_contract"]


def model_contract(config: TrainConfig | Mapping[str, Any]) -> ModelContract:
    """The contract of a network trained with ``config`` (a :func:`compose` result).

    Inference repeats exactly what validation did: the same sliding window and, when
    ``eval.postprocess`` is on, the task's ``keep_largest`` labels.
    """
    from medai_lab.tasks.schema import TrainConfig

    cfg = TrainConfig.from_dict(config)
    task, ev = cfg.task, cfg.eval
    return ModelContract(
        task=task.name,
        patch_size=_triple(task.patch_size, int),
        spacing=_triple(task.spacing, float),
        intensity=task.intensity,
        labels=tuple(sorted((k, v) for k, v in task.labels.items() if k != 0)),
        in_channels=task.in_channels,
        foreground_threshold=task.foreground_threshold,
        model=cfg.model.name,
        modality=task.modality,
        inference=Inference(
            sw_batch_size=ev.sw_batch_size,
            overlap=ev.overlap,
            mode=ev.mode,
            keep_largest=task.keep_largest if ev.postprocess else (),
        ),
        frames=frames_of(cfg.data.frames),
    )


def export_contract(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of :func:`model_contract` (what the sidecars hold)."""
    return model_contract(config).to_dict()


def load_network(ckpt: str | os.PathLike[str]) -> tuple[Any, ModelContract]:
    """``(network, contract)`` of a checkpoint written by ``medai-lab train`` (on the CPU)."""
    import torch

    from medai_lab.tasks.module import SegmentationModule

    try:
        module = SegmentationModule.load_from_checkpoint(
            str(ckpt), map_location=torch.device("cpu"), weights_only=False
        )
    except (KeyError, RuntimeError, TypeError, EOFError) as exc:
        raise MedaiError(f"{Path(ckpt).name} is not a MedAI Lab checkpoint: {exc}") from exc
    return module.net, model_contract(module.config)


def _triple(values: tuple[Any, ...], kind: type) -> Any:
    """A 3-tuple for the contract (the config checked the length)."""
    a, b, c = (kind(v) for v in values)
    return (a, b, c)

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
from typing import Any

from medai_lab.contract import ModelContract
from medai_lab.errors import MedaiError

__all__ = ["export_contract", "load_network", "model_contract"]


def model_contract(config: Mapping[str, Any]) -> ModelContract:
    """The contract of a network trained with ``config`` (a :func:`compose` result).

    Inference repeats exactly what validation did: the same sliding window and, when
    ``eval.postprocess`` is on, the task's ``keep_largest`` labels.
    """
    task, ev = config["task"], config["eval"]
    keep = [int(v) for v in task.get("keep_largest") or []] if ev["postprocess"] else []
    raw = {
        "task": task["name"],
        "in_channels": int(task.get("in_channels", 1)),
        "patch_size": list(task["patch_size"]),
        "spacing": list(task["spacing"]),
        "intensity": task["intensity"],
        "foreground_threshold": task.get("foreground_threshold"),
        "labels": task["labels"],
        "model": config["model"]["name"],
        "modality": task.get("modality"),
        "inference": {
            "sw_batch_size": ev["sw_batch_size"],
            "overlap": ev["overlap"],
            "mode": ev["mode"],
            "keep_largest": keep,
        },
    }
    return ModelContract.from_dict(raw)


def export_contract(config: Mapping[str, Any]) -> dict[str, Any]:
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

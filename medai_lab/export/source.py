"""Find the checkpoint behind ``medai-lab export RUN_OR_CKPT`` and export it.

``RUN_OR_CKPT`` is a ``.ckpt`` file, a run folder (``runs/liver``: its best checkpoint) or an
MLflow run id (the run's ``medai_lab.best_checkpoint`` tag).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from medai_lab.contract import ModelContract
from medai_lab.errors import MedaiError
from medai_lab.export.exporters import FORMATS, ExportError, export_model

ALL_FORMATS = (*FORMATS, "bundle")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def resolve_checkpoint(source: str | os.PathLike[str], tracking_uri: str | None = None) -> Path:
    """The checkpoint a run folder, checkpoint path or MLflow run id stands for."""
    path = Path(source)
    if path.is_file():
        if path.suffix != ".ckpt":
            raise ExportError(f"{path.name} is not a checkpoint (.ckpt)")
        return path
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        return _best_in(folder)
    if _RUN_ID.match(str(source)):
        return _from_mlflow(str(source), tracking_uri)
    raise ExportError(f"no such run folder, checkpoint or MLflow run: {source}")


def _best_in(folder: Path) -> Path:
    """The best checkpoint as recorded by the last one; else the only best-*.ckpt; else last."""
    last = folder / "last.ckpt"
    if last.is_file():
        import torch

        state = torch.load(str(last), map_location="cpu", weights_only=False)
        for key, value in (state.get("callbacks") or {}).items():
            if str(key).startswith("ModelCheckpoint") and value.get("best_model_path"):
                best = folder / Path(value["best_model_path"]).name
                if best.is_file():
                    return best
    bests = sorted(folder.glob("best-*.ckpt"))
    if len(bests) == 1:
        return bests[0]
    if last.is_file():
        return last
    raise ExportError(f"no checkpoint in {folder}")


def _from_mlflow(run_id: str, tracking_uri: str | None) -> Path:
    from mlflow.exceptions import MlflowException

    from medai_lab.tracking import make_client, resolve_tracking_uri

    client = make_client(resolve_tracking_uri(tracking_uri))
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ExportError(f"no MLflow run {run_id} in this tracking store") from exc
    tagged = run.data.tags.get("medai_lab.best_checkpoint")
    if not tagged or not Path(tagged).is_file():
        raise ExportError(f"MLflow run {run_id} has no checkpoint on this machine")
    return Path(tagged)


def export_checkpoint(
    source: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str],
    tracking_uri: str | None = None,
) -> Any:
    """Export the network of ``source`` (see :func:`resolve_checkpoint`) with its contract."""
    if fmt not in ALL_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(ALL_FORMATS)}")
    network, contract = load_network(resolve_checkpoint(source, tracking_uri))
    if fmt == "bundle":
        from medai_lab.export.bundle import export_bundle

        return export_bundle(network, contract, out, name=f"medai_lab_{contract.task}")
    return export_model(network, contract, out, fmt)


def load_network(ckpt: str | os.PathLike[str]) -> tuple[Any, ModelContract]:
    """``(network, contract)`` of a checkpoint written by ``medai-lab train`` (on the CPU).

    Checkpoints are read where training lives (:mod:`medai_lab.tasks.checkpoint`), imported
    here only when one is loaded: export never imports the training code at import time.
    """
    from medai_lab.tasks.checkpoint import load_network as load

    try:
        return load(ckpt)
    except MedaiError as exc:
        raise ExportError(str(exc)) from exc

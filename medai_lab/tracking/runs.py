"""Start or resume an MLflow run and record its params, tags and run card (no Lightning)."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.tracking.params import (
    MAX_PARAMS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
    flatten_config,
    truncate,
)
from medai_lab.tracking.runcard import write_run_card
from medai_lab.tracking.store import get_or_create_experiment

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

RESUME_TAG = "medai_lab.resume_count"
CHANGED_TAG = "medai_lab.config_changed_on_resume"


def start_run(
    client: MlflowClient,
    experiment: str,
    run_name: str | None = None,
    run_id: str | None = None,
) -> tuple[Run, int]:
    """Create a run in ``experiment``, or resume ``run_id`` (status back to RUNNING).

    Returns
    -------
    tuple
        ``(run, resumes)``: the run as it was before this call and how many times it has now
        been resumed (0 for a new run).
    """
    if run_id:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise ValueError(f"MLflow run {run_id} is deleted; cannot resume it")
        if run.info.status == "RUNNING":
            log.warning("run %s is RUNNING (a process died?); taking it over", run_id)
        client.update_run(run_id, status="RUNNING")
        return run, int(run.data.tags.get(RESUME_TAG, "0")) + 1
    exp_id = get_or_create_experiment(client, experiment, client.tracking_uri)
    return client.create_run(exp_id, run_name=run_name), 0


def run_tags(
    card: Mapping[str, Any], command_line: Sequence[str], extra: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Tags for a run: source, user, git commit, lock/data hashes from the card, then ``extra``."""
    tags = {"mlflow.source.type": "LOCAL"}
    if command_line:
        tags["mlflow.source.name"] = os.path.basename(command_line[0])
        tags["medai_lab.command_line"] = shlex.join(command_line)
    with contextlib.suppress(KeyError, OSError):
        tags["mlflow.user"] = getpass.getuser()
    code, env, data = card.get("code") or {}, card.get("environment") or {}, card.get("data")
    pairs = {
        "mlflow.source.git.commit": code.get("git_commit"),
        "medai_lab.git_dirty": code.get("git_dirty"),
        "medai_lab.lock_sha256": env.get("lock_sha256"),
        "medai_lab.data_manifest_sha256": (data or {}).get("manifest_sha256"),
        "medai_lab.deid_profile": card.get("deid_profile"),
    }
    tags.update({k: str(v) for k, v in pairs.items() if v is not None})
    tags.update({str(k): str(v) for k, v in (extra or {}).items()})
    return tags


def log_params_and_tags(
    client: MlflowClient,
    run: Run,
    config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> list[str]:
    """Log ``config`` flattened as params and ``tags``, in batches of MLflow's limit.

    On a resumed run, params already there are skipped; MLflow params cannot change, so keys
    whose value differs keep the first value and are listed in a tag. Returns those keys.
    """
    from mlflow.entities import Param, RunTag

    existing = dict(run.data.params)
    flat = flatten_config(config)
    changed = sorted(k for k, v in flat.items() if k in existing and existing[k] != v)
    if changed:
        log.warning("resumed run %s: config changed for %s", run.info.run_id, ", ".join(changed))
        tags = {**tags, CHANGED_TAG: ", ".join(changed)}
    params = [Param(k, v) for k, v in flat.items() if k not in existing]
    entries = [RunTag(k, truncate(v, MAX_TAG_VAL_LENGTH)) for k, v in tags.items()]
    for i in range(0, max(len(params), len(entries)), MAX_PARAMS_PER_BATCH):
        client.log_batch(
            run.info.run_id,
            params=params[i : i + MAX_PARAMS_PER_BATCH],
            tags=entries[i : i + MAX_PARAMS_PER_BATCH],
        )
    return changed


def log_run_card(
    client: MlflowClient, run_id: str, card: Mapping[str, Any], resumes: int = 0
) -> str:
    """Log the card as ``run_card/run_card.{json,md}`` (``run_card/resume-N/`` on a resume)."""
    folder = "run_card" if resumes == 0 else f"run_card/resume-{resumes}"
    with tempfile.TemporaryDirectory(prefix="medai-run-card-") as tmp:
        write_run_card(card, Path(tmp))
        client.log_artifacts(run_id, tmp, folder)
    return folder

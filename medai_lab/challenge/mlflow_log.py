"""Log scored submissions to MLflow: one experiment per challenge, one run per submission.

The experiment is ``challenge/<name>``; a run holds the team, phase, format and content hash
as params, the aggregate scores and failure counts as metrics, and the per-case table as an
artifact (the tracking store is the instructor's). mlflow is imported on call.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from medai_lab.challenge.spec import Spec


def experiment_name(spec: Spec) -> str:
    return f"challenge/{spec.name}"


def log_submission(
    spec: Spec,
    submission: dict[str, Any],
    score: dict[str, Any],
    case_csv: Path | None,
    tracking_uri: str | None = None,
) -> str:
    """Create a finished run for a scored submission; its run id."""
    from mlflow.entities import Metric, Param, RunTag

    from medai_lab.tracking import get_or_create_experiment, make_client

    client = make_client(tracking_uri)
    exp = get_or_create_experiment(client, experiment_name(spec), tracking_uri)
    run = client.create_run(exp, run_name=f"{submission['team']}-{submission['id']}")
    run_id = run.info.run_id
    try:
        params = {
            "team": submission["team"],
            "phase": submission["phase"],
            "format": submission["format"],
            "sha256": submission["sha256"],
            "submission_id": str(submission["id"]),
            "submitted_at": submission["created_at"],
            "task": spec.task,
            "ranking": ",".join(f"{k.metric}:{k.order}" for k in spec.ranking),
        }
        metrics = {
            k: float(v)
            for k, v in score.items()
            if k.endswith(("_mean", "_ci_low", "_ci_high")) and v is not None
            and not math.isnan(float(v))
        }  # fmt: skip
        metrics["n_cases"] = float(score["n_cases"])
        metrics["n_failed"] = float(score["n_failed"])
        for category, count in score["failures"].items():
            metrics[f"failed_{category}"] = float(count)
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[
                RunTag("medai_lab.challenge", spec.name),
                RunTag("medai_lab.team", submission["team"]),
            ],
        )
        if case_csv is not None and case_csv.is_file():
            client.log_artifact(run_id, str(case_csv), "evaluation")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id

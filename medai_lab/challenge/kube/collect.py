"""The evaluator's side of a Kubernetes run: a finished Job's result into the challenge database.

The scoring container leaves ``results/<id>/result.json`` in the challenge folder (a complete
folder or none, see :mod:`.entry`); the evaluator, which owns the database, records it. A Job
that failed before scoring (the deadline passed, the memory cap killed the submission's
container, the image could not start) is recorded as an error with one category.
"""

from __future__ import annotations

import json
from typing import Any

from medai_lab.challenge.api import Challenge
from medai_lab.challenge.kube.entry import RESULT_FILE
from medai_lab.challenge.kube.options import KubeError

# Reasons Kubernetes gives for a failed Job or a terminated container -> failure category.
JOB_FAILURES = {"DeadlineExceeded": "timeout", "OOMKilled": "oom", "BackoffLimitExceeded": "crash"}


def collect(challenge: Challenge, submission_id: int) -> dict[str, Any] | None:
    """Record the result of a finished run; None when the Job left no result folder."""
    path = challenge.root / "results" / str(int(submission_id)) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data["submission"]) != int(submission_id):
            raise ValueError
        cases = {str(c): (str(v[0]), v[1]) for c, v in data["cases"].items()}
        rows, score, notes = list(data["rows"]), dict(data["score"]), list(data["notes"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise KubeError(f"results/{submission_id}/{RESULT_FILE} is not a complete result") from None
    challenge.store.save_results(int(submission_id), cases, rows, score)
    challenge.store.finish(int(submission_id), "scored", ["isolation=kubernetes", *notes])
    return challenge.result(int(submission_id), team=None)


def record_failure(challenge: Challenge, submission_id: int, reason: str) -> dict[str, Any]:
    """Record a Job that ended without a result (``reason`` as Kubernetes reports it)."""
    category = JOB_FAILURES.get(reason, "crash")
    challenge.store.finish(int(submission_id), "error", [f"kubernetes={category}"])
    return challenge.result(int(submission_id), team=None)

"""Helpers of the Kubernetes manifest tests: specs on the phantom phases, schema validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
from challenge_helpers import spec_dict

from medai_lab.challenge.kube import SubmissionRef
from medai_lab.challenge.spec import Spec, parse_spec

# The oldest Kubernetes the Zero to JupyterHub 4.x chart supports, and the newest schema here.
VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
TEAM = "Alice.Smith@hospital.example"


def make_spec(phases: dict[str, Path], **limits: Any) -> Spec:
    return parse_spec(spec_dict(phases, **limits))


def ref(submission_id: int = 7, team: str = TEAM, fmt: str = "torchscript") -> SubmissionRef:
    return SubmissionRef(submission_id, team, "test", fmt, f"submissions/{'ab' * 32}")


def validate_all(docs: list[dict[str, Any]]) -> None:
    """Every manifest against the strict OpenAPI-derived schemas (unknown fields fail too)."""
    for doc in docs:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def containers(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Name -> container of a Job's pod (init containers included)."""
    spec = job["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}

"""The pod of one submission run: two containers, their volumes and their confinement.

- ``predict`` (an init container) runs the submission in the sandbox over the phase's images
  and leaves predictions in the ``handoff`` emptyDir. It sees the images (read-only), its own
  submission (read-only), the spec and two emptyDirs; never the labels, the challenge folder
  or a service-account token.
- ``score`` (trusted code, after ``predict`` has ended) checks every prediction again, scores
  them against the labels (mounted here only) and writes ``results/<id>/`` of the challenge
  folder, the only write outside the pod.

Both run as the same non-root user with no capabilities, no privilege escalation, a read-only
root filesystem and the runtime's default seccomp profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medai_lab.challenge.kube.options import KubeOptions
from medai_lab.challenge.spec import Limits

SPEC_DIR = "/etc/medai-challenge"
SPEC_FILE = f"{SPEC_DIR}/challenge.yaml"
IMAGES, LABELS = "/data/images", "/data/labels"
SUBMISSION, HANDOFF, WORK, SCRATCH, RESULTS = (
    "/submission", "/handoff", "/work", "/scratch", "/results",
)  # fmt: skip
ENTRY = ["python", "-I", "-B", "-m", "medai_lab.challenge.kube.entry"]


@dataclass(frozen=True)
class Mounts:
    """Where the pod's data comes from: claims and their sub-paths (``""``: the claim's root)."""

    data_claim: str
    images_path: str
    labels_claim: str
    labels_path: str
    challenge_claim: str
    submission_path: str
    spec_config: str


@dataclass(frozen=True)
class Sizes:
    """Scratch space of the run, MiB: the sandbox's copy of the images, predictions, temp."""

    work_mb: int
    handoff_mb: int
    scratch_mb: int


def sizes(limits: Limits, n_cases: int, images_mb: float) -> Sizes:
    """emptyDir size limits from the spec: outputs are capped by ``output_mb`` per case."""
    outputs = limits.output_mb * (n_cases + 1)
    return Sizes(
        work_mb=math.ceil(images_mb + outputs + limits.output_mb) + 256,
        handoff_mb=math.ceil(outputs) + 16,
        scratch_mb=math.ceil(2 * outputs) + 256,
    )


def security_context(opts: KubeOptions) -> dict[str, Any]:
    """A container's confinement (what PodSecurity ``restricted`` asks, and more)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": opts.run_as_user,
        "runAsGroup": opts.run_as_group,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(opts: KubeOptions) -> dict[str, Any]:
    # No fsGroup: Kubernetes would re-own the whole challenge claim on every pod start
    # (group-writable for every run); the pods run as the owner of the challenge folder.
    return {
        "runAsNonRoot": True,
        "runAsUser": opts.run_as_user,
        "runAsGroup": opts.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def predict_resources(limits: Limits, opts: KubeOptions) -> dict[str, Any]:
    """The spec's CPU, memory and GPU as requests equal to limits (a hard cap, Guaranteed QoS)."""
    amount: dict[str, str] = {"cpu": str(limits.cpus), "memory": f"{limits.memory_mb}Mi"}
    if limits.gpu:
        amount[opts.gpu_resource] = "1"
    return {"requests": dict(amount), "limits": dict(amount)}


def score_resources(opts: KubeOptions) -> dict[str, Any]:
    amount = {"cpu": str(opts.score_cpus), "memory": f"{opts.score_memory_mb}Mi"}
    return {"requests": dict(amount), "limits": dict(amount)}


def _mount(name: str, path: str, read_only: bool, sub_path: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mountPath": path, "readOnly": read_only}
    if sub_path:
        out["subPath"] = sub_path
    return out


def _claim(name: str, claim: str, read_only: bool) -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


def _empty(name: str, size_mb: int) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": f"{size_mb}Mi"}}


def volumes(m: Mounts, s: Sizes) -> list[dict[str, Any]]:
    """The pod's volumes; which container mounts which is in :func:`containers`."""
    out = [
        {"name": "spec", "configMap": {"name": m.spec_config, "defaultMode": 0o444}},
        _claim("images", m.data_claim, True),
        _claim("challenge", m.challenge_claim, False),
        _empty("handoff", s.handoff_mb),
        _empty("work", s.work_mb),
        _empty("scratch", s.scratch_mb),
    ]
    # its own volume even on the images' claim: only the scoring container mounts it
    out.insert(2, _claim("labels", m.labels_claim, True))
    return out


def containers(
    m: Mounts, phase: str, fmt: str, submission_id: int, limits: Limits, opts: KubeOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(predict, score)``: the init container running the submission, the scoring one."""
    predict = {
        "name": "predict",
        "image": opts.image,
        "imagePullPolicy": opts.image_pull_policy,
        "command": [
            *ENTRY,
            "predict",
            "--spec",
            SPEC_FILE,
            "--phase",
            phase,
            "--format",
            fmt,
            "--submission",
            SUBMISSION,
            "--out",
            HANDOFF,
        ],
        "env": _env(WORK, sandbox=True),
        "resources": predict_resources(limits, opts),
        "securityContext": security_context(opts),
        "volumeMounts": [
            _mount("spec", SPEC_DIR, True),
            _mount("images", IMAGES, True, m.images_path),
            _mount("challenge", SUBMISSION, True, m.submission_path),
            _mount("handoff", HANDOFF, False),
            _mount("work", WORK, False),
        ],
    }
    score = {
        "name": "score",
        "image": opts.image,
        "imagePullPolicy": opts.image_pull_policy,
        "command": [*ENTRY, "score", "--spec", SPEC_FILE, "--phase", phase,
                    "--handoff", HANDOFF, "--results", RESULTS, "--id", str(int(submission_id))],
        "env": _env(SCRATCH, sandbox=False),
        "resources": score_resources(opts),
        "securityContext": security_context(opts),
        "volumeMounts": [
            _mount("spec", SPEC_DIR, True),
            _mount("images", IMAGES, True, m.images_path),
            _mount("labels", LABELS, True, m.labels_path),
            _mount("handoff", HANDOFF, True),
            _mount("scratch", SCRATCH, False),
            _mount("challenge", RESULTS, False, "results"),
        ],
    }  # fmt: skip
    return predict, score


def _env(writable: str, sandbox: bool) -> list[dict[str, str]]:
    """HOME, TMPDIR and caches on the container's emptyDir (the root filesystem is read-only)."""
    env = {
        "HOME": f"{writable}/home",
        "TMPDIR": f"{writable}/tmp",
        "MPLCONFIGDIR": f"{writable}/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if sandbox:
        env["MEDAI_SANDBOX_DIR"] = f"{writable}/sandbox"
    return [{"name": k, "value": v} for k, v in env.items()]

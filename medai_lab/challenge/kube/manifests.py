"""Kubernetes manifests of a challenge: the shared set-up, and one Job per submission.

>>> from medai_lab.challenge.kube import base_manifests, job_manifests
>>> setup = base_manifests("hack/")                                      # doctest: +SKIP
>>> run = job_manifests("hack/", 12, image="registry/medai:1", namespace="medai")  # doctest: +SKIP

The set-up (applied once by an administrator): a NetworkPolicy that cuts every submission pod
of the challenge off the network, a service account for the pods with no token and no rights,
the evaluator's service account with a Role for jobs and pods of its namespace only, the claim
of the challenge folder and one ConfigMap per phase with the spec as the pods see it.

A run: the submission's own deny-all NetworkPolicy and its Job (see :mod:`.pod`).
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medai_lab.challenge.kube import pod
from medai_lab.challenge.kube.names import Names
from medai_lab.challenge.kube.options import KubeError, KubeOptions
from medai_lab.challenge.spec import Phase, Spec

Source = str | os.PathLike[str] | Spec


@dataclass(frozen=True)
class SubmissionRef:
    """What a Job needs of a stored submission (a row of the challenge database)."""

    id: int
    team: str
    phase: str
    format: str
    path: str  # relative to the challenge folder: submissions/<sha256>

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SubmissionRef:
        return cls(int(row["id"]), str(row["team"]), str(row["phase"]), str(row["format"]),
                   str(row["path"]))  # fmt: skip


def base_manifests(
    source: Source, opts: KubeOptions | None = None, **settings: Any
) -> list[dict[str, Any]]:
    """The shared objects of a challenge (see module docstring), in the order to apply them."""
    spec, _ = open_source(source)
    opts = (opts or KubeOptions()).replace(**settings)
    names = Names(spec.name)
    out = [
        deny_all_policy(names.deny_all, names.sandbox_selector(), names, opts),
        _account(names.sandbox_account, names, opts, token=False),
        _account(names.evaluator_account, names, opts, token=True),
        _role(names, opts),
        _role_binding(names, opts),
    ]
    if opts.challenge_claim is None:
        out.append(_challenge_claim(names, opts))
    out += [spec_config(spec, ph, names, opts) for ph in spec.phases]
    return out


def job_manifests(
    source: Source,
    submission: int | SubmissionRef,
    opts: KubeOptions | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """``[NetworkPolicy, Job]`` running one submission (a challenge folder, or a spec + ref).

    ``settings`` are :class:`KubeOptions` fields (``image=``, ``namespace=`` ...).
    """
    spec, root = open_source(source)
    opts = (opts or KubeOptions()).replace(**settings)
    if isinstance(submission, SubmissionRef):
        ref = submission
    elif root is None:
        raise KubeError("a submission number needs the challenge folder (not only its spec)")
    else:
        ref = _lookup(root, int(submission))
    phase = spec.phase(ref.phase)
    if ref.format not in phase.formats or ref.format == "predictions":
        raise KubeError(f"submission {ref.id}: format {ref.format!r} does not run in a sandbox")
    names = Names(spec.name)
    job = names.job(phase.name, ref.id)
    labels = names.run_labels(phase.name, ref.id, ref.team)
    mounts = _mounts(spec, phase, ref, names, opts)
    n_cases, images_mb = _phase_size(phase)
    predict, score = pod.containers(mounts, phase.name, ref.format, ref.id, spec.limits, opts)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": names.sandbox_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "terminationGracePeriodSeconds": 5,
        "securityContext": pod.pod_security_context(opts),
        "initContainers": [predict],
        "containers": [score],
        "volumes": pod.volumes(mounts, pod.sizes(spec.limits, n_cases, images_mb)),
    }
    if opts.node_selector:
        pod_spec["nodeSelector"] = dict(opts.node_selector)
    if spec.limits.gpu:
        pod_spec["tolerations"] = [dict(t) for t in opts.gpu_tolerations]
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job, "namespace": opts.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_s(spec, n_cases, opts),
            "ttlSecondsAfterFinished": opts.ttl_after_finished_s,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    selector = {**names.sandbox_selector(), "medai-lab.io/submission": str(ref.id)}
    return [deny_all_policy(job, selector, names, opts), manifest]


def deadline_s(spec: Spec, n_cases: int, opts: KubeOptions) -> int:
    """Wall-clock seconds of the whole Job: what the sandbox may take, plus scoring.

    The sandbox may start a worker :data:`~medai_lab.challenge.sandbox.MAX_STARTS` times
    (each with ``startup_s``) and spends at most ``time_per_case_s`` on each case.
    """
    from medai_lab.challenge.sandbox import MAX_STARTS

    lim = spec.limits
    return math.ceil(MAX_STARTS * lim.startup_s + n_cases * lim.time_per_case_s) + (
        opts.score_time_s
    )


def deny_all_policy(
    name: str, selector: dict[str, str], names: Names, opts: KubeOptions
) -> dict[str, Any]:
    """A NetworkPolicy with no ingress and no egress rule for the selected pods: no traffic."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": opts.namespace, "labels": names.common()},
        "spec": {
            "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def spec_config(spec: Spec, phase: Phase, names: Names, opts: KubeOptions) -> dict[str, Any]:
    """The phase's spec with the pod's paths (``/data/images``, ``/data/labels``)."""
    import yaml

    data = spec.to_dict()
    entry = dict(data["phases"][phase.name])
    entry.update(images=pod.IMAGES, labels=pod.LABELS)
    data["phases"] = {phase.name: entry}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.spec_config(phase.name),
            "namespace": opts.namespace,
            "labels": names.common(),
        },
        "data": {"challenge.yaml": yaml.safe_dump(data, sort_keys=False)},
    }


def open_source(source: Source) -> tuple[Spec, Path | None]:
    """The spec, and the challenge folder when ``source`` is one (else a spec YAML or Spec)."""
    from medai_lab.challenge.spec import load_spec

    if isinstance(source, Spec):
        return source, None
    path = Path(source)
    if path.is_file():
        return load_spec(path), None
    from medai_lab.challenge.api import Challenge

    ch = Challenge.open(path)
    return ch.spec, ch.root


# --- parts ------------------------------------------------------------------------------------


def _lookup(root: Path, submission_id: int) -> SubmissionRef:
    from medai_lab.challenge.api import Challenge

    row = Challenge.open(root).store.get(submission_id)
    if row is None:
        raise KubeError(f"no submission {submission_id} in this challenge")
    return SubmissionRef.from_row(row)


def _mounts(
    spec: Spec, phase: Phase, ref: SubmissionRef, names: Names, opts: KubeOptions
) -> pod.Mounts:
    rel = posixpath.normpath(ref.path)
    if rel.startswith(("/", "..")) or not rel.startswith("submissions/"):
        raise KubeError(f"submission {ref.id}: stored path is not under submissions/")
    root = Path(opts.data_root) if opts.data_root else _common_root(spec)
    data_claim = opts.data_claim or names.data_claim
    return pod.Mounts(
        data_claim=data_claim,
        images_path=_below(phase.images, root, f"phase {phase.name} images"),
        labels_claim=opts.labels_claim or data_claim,
        labels_path=_below(phase.labels, root, f"phase {phase.name} labels"),
        challenge_claim=opts.challenge_claim or names.challenge_claim,
        submission_path=rel,
        spec_config=names.spec_config(phase.name),
    )


def _common_root(spec: Spec) -> Path:
    folders = [str(p) for ph in spec.phases for p in (ph.images, ph.labels)]
    return Path(os.path.commonpath(folders))


def _below(folder: Path, root: Path, what: str) -> str:
    """``folder`` as a sub-path of the data claim mounted at ``root``."""
    try:
        rel = Path(folder).resolve().relative_to(root.resolve())
    except ValueError:
        raise KubeError(f"{what} are not under the data root {root} (set --data-root)") from None
    return "" if rel == Path(".") else rel.as_posix()


def _phase_size(phase: Phase) -> tuple[int, float]:
    """Number of cases and MiB of images (sizes the Job's deadline and scratch space)."""
    from medai_lab.challenge.runner import phase_cases

    cases = phase_cases(phase)
    return len(cases), sum(p.stat().st_size for p in cases.values()) / 2**20


def _account(name: str, names: Names, opts: KubeOptions, token: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": opts.namespace, "labels": names.common()},
        "automountServiceAccountToken": token,
    }


def _role(names: Names, opts: KubeOptions) -> dict[str, Any]:
    """Jobs and pods of this namespace: start, watch, read logs, delete; nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": names.evaluator_account,
            "namespace": opts.namespace,
            "labels": names.common(),
        },
        "rules": [
            {"apiGroups": ["batch"], "resources": ["jobs"],
             "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    }  # fmt: skip


def _role_binding(names: Names, opts: KubeOptions) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": names.evaluator_account,
            "namespace": opts.namespace,
            "labels": names.common(),
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": names.evaluator_account,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": names.evaluator_account,
                "namespace": opts.namespace,
            }
        ],
    }


def _challenge_claim(names: Names, opts: KubeOptions) -> dict[str, Any]:
    """The challenge folder: mounted by the evaluator and, by sub-path, by the pods."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": opts.challenge_storage}},
    }
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": names.challenge_claim,
            "namespace": opts.namespace,
            "labels": names.common(),
        },
        "spec": spec,
    }

"""Generated Kubernetes manifests: schema-valid, no network, labels only where scored, non-root.

No cluster is reachable here: manifests are validated against the Kubernetes OpenAPI schemas
(``kubernetes_validate``, strict) and their behaviour is read from the objects themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
from kube_helpers import TEAM, by_kind, containers, make_spec, ref, validate_all

from medai_lab.challenge.kube import KubeError, KubeOptions, base_manifests, job_manifests
from medai_lab.challenge.kube.names import DNS_LABEL, JOB_NAME_MAX
from medai_lab.challenge.runner import phase_cases

LIMITS = {
    "cpu": {"cpus": 2, "memory_mb": 3072},
    "gpu": {"cpus": 4, "memory_mb": 6144, "gpu": True},
}


@pytest.fixture(params=sorted(LIMITS))
def setup(request: pytest.FixtureRequest, phases: dict[str, Path]) -> tuple:
    """(kind, spec, base manifests, [NetworkPolicy, Job]) for a CPU and a GPU challenge."""
    spec = make_spec(phases, **LIMITS[request.param])
    return request.param, spec, base_manifests(spec), job_manifests(spec, ref())


def test_every_manifest_validates_against_the_kubernetes_schemas(setup: tuple) -> None:
    _, _, base, run = setup
    assert {d["kind"] for d in base} >= {
        "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim",
        "ConfigMap",
    }  # fmt: skip
    assert [d["kind"] for d in run] == ["NetworkPolicy", "Job"]
    validate_all(base + run)


def test_the_schema_check_rejects_a_broken_job(setup: tuple) -> None:
    job = setup[3][1]
    containers(job)["score"]["securityContext"]["runAsNonRoot"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_all([job])


def test_labels_are_mounted_only_in_the_scoring_container(setup: tuple) -> None:
    _, spec, _, (_, job) = setup
    pod = job["spec"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
              for v in pod["volumes"]}  # fmt: skip
    predict, score = pod["initContainers"], pod["containers"]
    assert [c["name"] for c in predict] == ["predict"] and [c["name"] for c in score] == ["score"]
    label_mount = next(m for m in score[0]["volumeMounts"] if m["mountPath"] == "/data/labels")
    labels_source = (claims[label_mount["name"]], label_mount["subPath"])
    for mount in predict[0]["volumeMounts"]:
        assert mount["name"] != label_mount["name"]
        assert (claims.get(mount["name"]), mount.get("subPath", "")) != labels_source
        assert "label" not in mount.get("subPath", "").lower()
    spec_phase = spec.phase("test")
    assert label_mount["subPath"].endswith(spec_phase.labels.name)
    # the submission sees the images and its own files read-only, never the challenge folder
    mounts = {m["mountPath"]: m for m in predict[0]["volumeMounts"]}
    assert mounts["/data/images"]["readOnly"] and mounts["/submission"]["readOnly"]
    assert mounts["/submission"]["subPath"].startswith("submissions/")
    assert all(m.get("subPath") != "results" for m in predict[0]["volumeMounts"])
    assert pod["automountServiceAccountToken"] is False


def test_network_policy_denies_all_traffic_of_the_job_pods(setup: tuple) -> None:
    _, _, base, (policy, job) = setup
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    for pol in [policy, *by_kind(base, "NetworkPolicy")]:
        spec = pol["spec"]
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert spec["ingress"] == [] and spec["egress"] == []
        selector = spec["podSelector"]["matchLabels"]
        assert selector and set(selector.items()) <= set(pod_labels.items())
    assert policy["metadata"]["namespace"] == job["metadata"]["namespace"]


def test_every_container_runs_non_root_without_privileges(setup: tuple) -> None:
    _, _, base, (_, job) = setup
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in containers(job).values():
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    accounts = {a["metadata"]["name"]: a for a in by_kind(base, "ServiceAccount")}
    assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False


def test_limits_are_the_spec_limits(setup: tuple) -> None:
    kind, spec, _, (_, job) = setup
    res = containers(job)["predict"]["resources"]
    assert res["requests"] == res["limits"]
    assert res["limits"]["cpu"] == str(spec.limits.cpus)
    assert res["limits"]["memory"] == f"{spec.limits.memory_mb}Mi"
    gpu = res["limits"].get("nvidia.com/gpu")
    tolerations = job["spec"]["template"]["spec"].get("tolerations", [])
    if kind == "gpu":
        assert gpu == "1" and any(t["key"] == "nvidia.com/gpu" for t in tolerations)
    else:
        assert gpu is None and not tolerations
    assert "nvidia.com/gpu" not in containers(job)["score"]["resources"]["limits"]


def test_deadline_follows_the_time_limits(phases: dict[str, Path]) -> None:
    n = len(phase_cases(make_spec(phases).phase("test")))
    jobs = [
        job_manifests(make_spec(phases, time_per_case_s=t, startup_s=30), ref())[1]
        for t in (10, 25)
    ]
    short, long = (j["spec"]["activeDeadlineSeconds"] for j in jobs)
    assert long - short == n * 15
    assert short >= 30 + n * 10  # a submission within the limits is never cut short
    for job in jobs:
        assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_names_are_deterministic_and_carry_no_identifiers(phases: dict[str, Path]) -> None:
    spec = make_spec(phases)
    once = base_manifests(spec) + job_manifests(spec, ref())
    assert once == base_manifests(spec) + job_manifests(spec, ref())
    job = once[-1]
    assert job["metadata"]["name"] != job_manifests(spec, ref(8))[1]["metadata"]["name"]
    assert len(job["metadata"]["name"]) <= JOB_NAME_MAX
    text = json.dumps(once)
    for part in ("alice", "smith", "@"):
        assert all(part not in d["metadata"]["name"].lower() for d in once)
    slug = job["metadata"]["labels"]["medai-lab.io/team"]
    assert DNS_LABEL.match(slug) and "@" not in text and TEAM not in text
    other = job_manifests(spec, ref(team="alice.smith@hospital.example"))[1]
    assert other["metadata"]["labels"]["medai-lab.io/team"] != slug  # distinct teams stay apart
    for folder in (phases["test"], phases["validation"]):  # host paths stay on the host
        assert str(folder) not in text


def test_options_override_namespace_image_and_claims(phases: dict[str, Path]) -> None:
    spec = make_spec(phases)
    docs = job_manifests(
        spec, ref(), namespace="hackathon", image="registry.local/medai:2", data_claim="ct-hidden"
    )
    job = docs[1]
    assert {d["metadata"]["namespace"] for d in docs} == {"hackathon"}
    assert {c["image"] for c in containers(job).values()} == {"registry.local/medai:2"}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert "ct-hidden" in claims
    validate_all(docs)


@pytest.mark.parametrize(
    ("settings", "word"),
    [
        ({"namespace": "Hack_Day"}, "namespace"),
        ({"run_as_user": 0}, "run-as-user"),
        ({"image": "bad image"}, "image"),
        ({"data_root": "/somewhere/else"}, "data root"),
    ],
)
def test_bad_settings_give_one_clear_line(
    phases: dict[str, Path], settings: dict, word: str
) -> None:
    with pytest.raises(KubeError) as err:
        job_manifests(make_spec(phases), ref(), **settings)
    message = str(err.value)
    assert word in message and "\n" not in message


def test_predictions_are_not_run_as_a_job(phases: dict[str, Path]) -> None:
    spec = make_spec(phases)
    with pytest.raises(KubeError, match="sandbox"):
        job_manifests(spec, ref(fmt="predictions"))
    assert KubeOptions().checked().namespace  # the packaged defaults are valid

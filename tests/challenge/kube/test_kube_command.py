"""``medai-lab challenge kube``: YAML files that validate, one clear line on bad input."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from challenge_helpers import HONEST, spec_dict, write_package
from kube_helpers import TEAM, validate_all

from medai_lab.challenge import Challenge, SpecError
from medai_lab.challenge.kube import KubeError
from medai_lab.challenge.kube.command import add_parser


def kube(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="medai-lab challenge")
    add_parser(parser.add_subparsers(dest="challenge_command"))
    args = parser.parse_args(["kube", *argv])
    return int(args.func(args))


def test_writes_setup_and_one_job_per_submission(
    make_challenge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ch = make_challenge()
    row = ch.submit(write_package(tmp_path / "pkg", HONEST), team=TEAM, phase="test")
    out = tmp_path / "k8s"
    assert kube(str(ch.root), "--out", str(out), "--submission", str(row["id"]),
                "--namespace", "hackathon", "--image", "registry.local/medai:3") == 0  # fmt: skip
    written = sorted(p.name for p in out.iterdir())
    assert written[-1] == "setup.yaml" and len(written) == 2  # nothing partial left
    job_file = out / written[0]
    assert written[0].startswith("job-") and str(row["id"]) in written[0]
    docs = [d for f in (out / "setup.yaml", job_file) for d in yaml.safe_load_all(f.read_text())]
    validate_all(docs)
    job = next(d for d in docs if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["initContainers"][0]["volumeMounts"]}
    sub = mounts["/submission"]
    assert sub["subPath"] == row["path"]  # the stored copy, read-only
    assert {d["metadata"]["namespace"] for d in docs} == {"hackathon"}
    assert "kubectl apply" in capsys.readouterr().out
    # the spec the pods read: this phase only, with the pod's paths
    name = pod["volumes"][0]["configMap"]["name"]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
    pod_spec = yaml.safe_load(config["data"]["challenge.yaml"])
    assert list(pod_spec["phases"]) == ["test"]
    assert pod_spec["phases"]["test"]["images"] == "/data/images"
    assert pod_spec["phases"]["test"]["labels"] == "/data/labels"
    assert pod_spec["limits"]["memory_mb"] == ch.spec.limits.memory_mb


def test_a_spec_file_gives_the_setup_only(phases: dict[str, Path], tmp_path: Path) -> None:
    spec_file = tmp_path / "challenge.yaml"
    spec_file.write_text(yaml.safe_dump(spec_dict(phases, gpu=True)))
    assert kube(str(spec_file), "--out", str(tmp_path / "k8s")) == 0
    assert [p.name for p in (tmp_path / "k8s").iterdir()] == ["setup.yaml"]
    with pytest.raises(KubeError, match="challenge folder"):
        kube(str(spec_file), "--out", str(tmp_path / "k8s"), "--submission", "1")


def test_a_gpu_challenge_can_ask_for_a_mig_slice(phases: dict[str, Path], tmp_path: Path) -> None:
    spec_file = tmp_path / "challenge.yaml"
    spec_file.write_text(yaml.safe_dump(spec_dict(phases, gpu=True)))
    ch_dir = tmp_path / "hack"
    ch = Challenge.create(ch_dir, spec_file)
    row = ch.submit(write_package(tmp_path / "pkg", HONEST), team="owls", phase="test")
    out = tmp_path / "k8s"
    assert kube(str(ch_dir), "--out", str(out), "--submission", str(row["id"]),
                "--gpu-resource", "nvidia.com/mig-1g.10gb") == 0  # fmt: skip
    docs = [d for f in sorted(out.iterdir()) for d in yaml.safe_load_all(f.read_text())]
    validate_all(docs)
    job = next(d for d in docs if d["kind"] == "Job")
    limits = job["spec"]["template"]["spec"]["initContainers"][0]["resources"]["limits"]
    assert limits["nvidia.com/mig-1g.10gb"] == "1" and "nvidia.com/gpu" not in limits


def test_a_bad_spec_value_is_one_line_and_writes_nothing(
    phases: dict[str, Path], tmp_path: Path
) -> None:
    raw = spec_dict(phases)
    raw["limits"]["memory_mb"] = -512
    spec_file = tmp_path / "challenge.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as err:
        kube(str(spec_file), "--out", str(tmp_path / "k8s"))
    assert "limits.memory_mb" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "k8s").exists()


def test_an_unknown_submission_is_one_line(make_challenge, tmp_path: Path) -> None:
    ch = make_challenge()
    with pytest.raises(KubeError) as err:
        kube(str(ch.root), "--out", str(tmp_path / "k8s"), "--submission", "99")
    assert "no submission 99" in str(err.value) and "\n" not in str(err.value)

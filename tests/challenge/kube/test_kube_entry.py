"""The Job's two steps run here on local folders: same scores as the local evaluator, and a
hand-off tampered with by the submission cannot put the labels (or anything else) on the board.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from challenge_helpers import HONEST, write_package

from medai_lab.challenge.kube import entry
from medai_lab.challenge.kube.collect import collect, record_failure
from medai_lab.challenge.kube.manifests import spec_config
from medai_lab.challenge.kube.names import Names
from medai_lab.challenge.kube.options import KubeOptions
from medai_lab.challenge.kube.pod import IMAGES, LABELS
from medai_lab.challenge.runner import phase_cases


def pod_spec_file(ch: Any, phase: str, folder: Path) -> Path:
    """The phase's ConfigMap spec, its pod paths mapped to this machine's folders."""
    text = spec_config(ch.spec, ch.spec.phase(phase), Names(ch.spec.name), KubeOptions())
    data = yaml.safe_load(text["data"]["challenge.yaml"])
    ph = ch.spec.phase(phase)
    assert data["phases"][phase]["images"] == IMAGES and data["phases"][phase]["labels"] == LABELS
    data["phases"][phase].update(images=str(ph.images), labels=str(ph.labels))
    path = folder / "challenge.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def score_step(ch: Any, spec_file: Path, phase: str, handoff: Path, sid: int) -> None:
    argv = ["score", "--spec", str(spec_file), "--phase", phase, "--handoff", str(handoff),
            "--results", str(ch.root / "results"), "--id", str(sid)]  # fmt: skip
    assert entry.main(argv) == 0


def case_dice(result: dict[str, Any]) -> dict[str, float]:
    """Mean Dice over labels per case, and each case's status."""
    out: dict[str, list[float]] = {}
    for row in result["cases"]:
        out.setdefault(row["case"], []).append(row["dice"])
    return {c: sum(v) / len(v) for c, v in out.items()}


def test_pod_steps_score_exactly_like_the_local_evaluator(make_challenge, tmp_path: Path) -> None:
    ch = make_challenge()
    pkg = write_package(tmp_path / "pkg", HONEST)
    local = ch.submit(pkg, team="larks", phase="validation")
    pod = ch.submit(pkg, team="owls", phase="validation")
    ch.evaluate(max_submissions=1, track=False)  # the oldest: the local one
    spec_file = pod_spec_file(ch, "validation", tmp_path)
    handoff = tmp_path / "handoff"
    argv = ["predict", "--spec", str(spec_file), "--phase", "validation", "--format", "python",
            "--submission", str(ch.root / pod["path"]), "--out", str(handoff)]  # fmt: skip
    assert entry.main(argv) == 0
    score_step(ch, spec_file, "validation", handoff, pod["id"])
    got = collect(ch, pod["id"])
    want = ch.result(local["id"], team=None)
    assert got is not None and got["status"] == want["status"] == "scored"
    for key in ("dice_mean", "hd95_mean", "nsd_mean", "n_cases", "n_failed"):
        assert got["score"][key] == want["score"][key], key
    assert case_dice(got) == case_dice(want)
    assert got["score"]["n_failed"] == 0 and got["score"]["dice_mean"] > 0
    assert "isolation=kubernetes" in got["notes"]


def test_a_tampered_handoff_scores_nothing_it_did_not_earn(make_challenge, tmp_path: Path) -> None:
    ch = make_challenge()
    row = ch.submit(write_package(tmp_path / "pkg", HONEST), team="owls", phase="test")
    phase = ch.spec.phase("test")
    cases = phase_cases(phase)
    names = sorted(cases)
    assert len(names) >= 3
    spec_file = pod_spec_file(ch, "test", tmp_path)
    label = {c: next(p for p in phase.labels.iterdir() if p.name.startswith(c + "."))
             for c in names}  # fmt: skip

    # 1. the predictions folder is a link to the labels: nothing is read through it
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(phase.labels, linked / "predictions")
    claims = {"cases": {c: ["ok", 1.0] for c in names}, "notes": []}
    (linked / "cases.json").write_text(json.dumps(claims))
    score_step(ch, spec_file, "test", linked, row["id"])
    res = collect(ch, row["id"])
    assert res is not None and res["score"]["dice_mean"] == 0.0
    assert res["score"]["failures"] == {"invalid_output": len(names)}

    # 2. real folder: an earned case, a 'timed out' case with the truth, a pipe, a bad word
    handoff = tmp_path / "handoff"
    (handoff / "predictions").mkdir(parents=True)
    good, timed_out, piped = names[:3]
    for c in (good, timed_out):
        shutil.copyfile(label[c], handoff / "predictions" / label[c].name)
    os.mkfifo(handoff / "predictions" / f"{piped}.nii.gz")  # would block a plain open()
    claims = {"cases": {good: ["ok", 1e9], timed_out: ["timeout", None], piped: ["ok", 1.0],
                        **{c: ["hacked", 1.0] for c in names[3:]}},
              "notes": ["x" * 500]}  # fmt: skip
    (handoff / "cases.json").write_text(json.dumps(claims))
    score_step(ch, spec_file, "test", handoff, row["id"])
    res = collect(ch, row["id"])
    assert res is not None
    dice = case_dice(res)
    status = {r["case"]: r["status"] for r in res["cases"]}
    assert status[good] == "ok" and dice[good] == 1.0
    assert status[timed_out] == "timeout" and dice[timed_out] == 0.0
    assert status[piped] == "invalid_output" and dice[piped] == 0.0
    assert all(status[c] == "crash" for c in names[3:])
    stored = {r["case"]: r["seconds"] for r in ch.store.case_rows(row["id"])}
    assert stored[good] <= ch.spec.limits.time_per_case_s  # reported times are bounded
    assert "x" * 500 not in res["notes"]


def test_a_job_without_result_is_recorded_as_an_error(make_challenge, tmp_path: Path) -> None:
    ch = make_challenge()
    row = ch.submit(write_package(tmp_path / "pkg", HONEST), team="owls", phase="test")
    assert collect(ch, row["id"]) is None  # no result folder yet: nothing recorded
    assert ch.result(row["id"], team=None)["status"] == "queued"
    res = record_failure(ch, row["id"], "DeadlineExceeded")
    assert res["status"] == "error" and "kubernetes=timeout" in res["notes"]
    assert ch.leaderboard("test").empty

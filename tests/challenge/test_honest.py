"""A real exported model (smoke-trained, TorchScript) through the sandbox, scored like the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from medai_lab.cli import main

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The liver smoke-preset network exported like ``medai-lab export`` (TorchScript + contract).

    Seeded weights instead of a training run (tests/export trains one; here it would add ~30 s
    for nothing the challenge looks at).
    """
    import torch

    from medai_lab.export import export_model
    from medai_lab.tasks import compose
    from medai_lab.tasks.module import build_network, export_contract

    cfg = compose("liver", "smoke")
    torch.manual_seed(0)
    n_classes = max(int(k) for k in cfg["task"]["labels"]) + 1
    net = build_network(cfg["model"], 1, n_classes)
    model = tmp_path_factory.mktemp("export") / "liver.ts"
    export_model(net, export_contract(cfg), model, "torchscript")
    return model


def test_honest_model_is_scored_exactly_like_medai_lab_evaluate(
    exported: Path, make_challenge: Any, phases: dict[str, Path], tmp_path: Path, store: str
) -> None:
    from medai_lab.challenge.sandbox import isolation
    from medai_lab.tracking import make_client

    ch = make_challenge(time_per_case_s=120, startup_s=300, memory_mb=6144, output_mb=64)
    sid = ch.submit(exported, team="owls", phase="test")["id"]
    (res,) = ch.evaluate(tracking_uri=store)
    assert res["status"] == "scored", res.get("notes")
    assert res["score"]["n_failed"] == 0 and res["score"]["n_cases"] == 3
    if isolation() == "namespaces":
        assert {"net=isolated", "user=unprivileged", "fs=private"} <= set(res["notes"].split("; "))

    # the stored predictions through `medai-lab evaluate`: the same table, to the last bit
    preds = ch.root / "results" / str(sid) / "predictions"
    truth = phases["test"] / "labelsTr"
    csv = tmp_path / "report.csv"
    args = ["evaluate", str(preds), str(truth), "--labels", "1=liver", "2=tumour"]
    assert main([*args, "--nsd-tolerance", "3", "--out", str(csv)]) == 0
    ref = pd.read_csv(csv)
    got = pd.DataFrame(res["cases"])[list(ref.columns)]
    pd.testing.assert_frame_equal(got, ref, check_exact=True, check_dtype=False)
    assert (pd.DataFrame(res["cases"])["status"] == "ok").all()

    # the model applied directly (`medai-lab predict`) gives the same label maps
    direct = tmp_path / "direct"
    args = ["predict", str(exported), str(phases["test"] / "imagesTr"), "--out", str(direct)]
    assert main([*args, "--quiet"]) == 0
    for path in sorted(direct.iterdir()):
        mine, theirs = nib.load(preds / path.name), nib.load(path)
        assert np.allclose(mine.affine, theirs.affine)
        assert np.mean(np.asarray(mine.dataobj) != np.asarray(theirs.dataobj)) < 1e-3

    # one MLflow experiment per challenge, one finished run per submission
    client = make_client(store)
    exp = client.get_experiment_by_name("challenge/liver-test")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["team"] == "owls"
    assert run.data.metrics["dice_mean"] == pytest.approx(res["score"]["dice_mean"])
    assert run.data.metrics["n_failed"] == 0

    # the hidden phase shows the team aggregates only
    team_view = ch.result(sid, team="owls")
    assert "cases" not in team_view and team_view["score"]["dice_mean"] == res["score"]["dice_mean"]
    board = ch.leaderboard("test")
    assert list(board["team"]) == ["owls"] and board["dice"].iloc[0] == res["score"]["dice_mean"]


def test_corrupted_torchscript_is_refused_at_submission(
    exported: Path, make_challenge: Any, tmp_path: Path
) -> None:
    from medai_lab.challenge import ChallengeError
    from medai_lab.export import find_sidecar, sidecar_path

    ch = make_challenge()
    bad = tmp_path / "bad.ts"
    data = exported.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    sidecar_path(bad).write_bytes(find_sidecar(exported).read_bytes())
    with pytest.raises(ChallengeError, match="not a complete TorchScript archive"):
        ch.submit(bad, team="owls", phase="test")
    assert ch.submissions() == []

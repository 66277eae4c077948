"""Ranking rule, rank stability, scores vs the evaluation summary, visible-phase views, CLI."""

from __future__ import annotations

import json
import math
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from challenge_helpers import HONEST, write_package

from medai_lab.challenge import ChallengeError, RankKey
from medai_lab.challenge.scoring import aggregate, rank_entries, rank_stability
from medai_lab.cli import main

RULE = (RankKey("dice", "desc"), RankKey("hd95", "asc"))


def _entry(i: int, team: str, dice: float, hd95: float) -> dict[str, Any]:
    return {"id": i, "team": team, "dice_mean": dice, "hd95_mean": hd95}


def test_ranking_rule_and_tie_breaks() -> None:
    entries = [
        _entry(1, "a", 0.80, 9.0),
        _entry(2, "b", 0.80, 7.0),  # same Dice, better HD95
        _entry(3, "c", 0.90, math.nan),  # best Dice: HD95 only breaks ties
        _entry(4, "a", 0.85, 5.0),  # a's best submission
        _entry(5, "d", math.nan, 1.0),  # no Dice: last
        _entry(6, "e", 0.80, 7.0),  # full tie with b: same rank, the earlier listed first
    ]
    ranked = rank_entries(entries, RULE)
    assert [(e["team"], e["id"], e["rank"]) for e in ranked] == [
        ("c", 3, 1), ("a", 4, 2), ("b", 2, 3), ("e", 6, 3), ("d", 5, 5),
    ]  # fmt: skip


def test_identical_scores_share_first_place_and_its_probability(phases: dict[str, Path]) -> None:
    from challenge_helpers import spec_dict

    from medai_lab.challenge import parse_spec
    from medai_lab.challenge.leaderboard import format_table

    same = list(np.random.default_rng(3).random(12))
    tables = [_table(same), _table(same), _table([v - 0.3 for v in same])]
    entries = [_entry(1, "owls", 0.7, 3.0), _entry(2, "bats", 0.7, 3.0)]
    entries.append(_entry(3, "cats", 0.4, 3.0))
    ranked = rank_entries(entries, RULE)
    assert [e["rank"] for e in ranked] == [1, 1, 3]  # competition ranking: 1, 1, 3
    st = rank_stability(tables, RULE, n_boot=200)
    # the tied teams tie in every resample: each is first in half of them, never one in all
    assert [s["p_first"] for s in st] == [0.5, 0.5, 0.0]
    assert [(s["rank_low"], s["rank_high"]) for s in st[:2]] == [(1.0, 1.0), (1.0, 1.0)]
    assert st[2]["rank_low"] == 3.0
    board = pd.DataFrame(
        [{"rank": e["rank"], "team": e["team"], "submission": e["id"], "failed_cases": 0,
          "n_cases": 12, **{f"{m}{s}": 0.5 for m in ("dice", "hd95", "nsd")
                            for s in ("", "_ci_low", "_ci_high")}, **s_}
         for e, s_ in zip(ranked, st, strict=True)]
    )  # fmt: skip
    spec = parse_spec(spec_dict(phases))
    text = format_table(board, spec, spec.phase("validation"))
    rows = {line.split()[1]: line.split()[0] for line in text.splitlines()[2:]}
    assert rows == {"owls": "1=", "bats": "1=", "cats": "3"}


def _table(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"case": [f"c{i}" for i in range(len(values))], "label": 1, "label_name": "x",
         "dice": values, "hd95": 1.0, "nsd": values}
    )  # fmt: skip


def test_rank_stability() -> None:
    rng = np.random.default_rng(0)
    clear = [_table(list(0.9 + 0.01 * rng.random(20))), _table(list(0.5 + 0.01 * rng.random(20)))]
    st = rank_stability(clear, RULE, n_boot=300)
    assert st[0]["p_first"] == 1.0 and st[0]["rank_high"] == 1.0 and st[1]["rank_low"] == 2.0
    close_a = list(rng.random(20))
    close_b = [v + rng.normal(0, 0.2) for v in close_a]
    st = rank_stability([_table(close_a), _table(close_b)], RULE, n_boot=300)
    assert 0.0 < st[0]["p_first"] < 1.0 and st[0]["rank_low"] == 1.0 and st[0]["rank_high"] == 2.0
    assert rank_stability([], RULE) == []


def test_one_label_score_equals_the_evaluation_summary(phases: dict[str, Path]) -> None:
    from challenge_helpers import spec_dict

    from medai_lab.challenge import parse_spec
    from medai_lab.evaluation import summarize

    raw = spec_dict(phases)
    raw["labels"] = {1: "liver"}
    spec = parse_spec(raw)
    rng = np.random.default_rng(1)
    df = _table(list(rng.random(7)))
    df.loc[2, "hd95"] = math.nan
    agg = aggregate(df, spec)
    ref = summarize(df, n_boot=spec.bootstrap).iloc[0]
    for m in ("dice", "hd95", "nsd"):
        for s in ("mean", "ci_low", "ci_high"):
            assert agg[f"{m}_{s}"] == ref[f"{m}_{s}"]
    assert agg["per_label"][0]["hd95_n_undefined"] == 1


def test_validation_phase_views(
    make_challenge: Any, phases: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ch = make_challenge()
    perfect = tmp_path / "perfect"
    shutil.copytree(phases["validation"] / "labelsTr", perfect)
    sid = ch.submit(perfect, team="owls")["id"]
    other = ch.submit(write_package(tmp_path / "pkg", HONEST), team="larks")["id"]
    results = {r["id"]: r for r in ch.evaluate(track=False)}
    assert results[sid]["score"]["dice_mean"] == 1.0 and results[sid]["score"]["hd95_mean"] == 0
    assert 0 < results[other]["score"]["dice_mean"] < 1
    mine = ch.result(sid, team="owls")
    assert {r["case"] for r in mine["cases"]} == {"liver_000", "liver_001"}
    with pytest.raises(ChallengeError, match="not one of team 'larks'"):
        ch.result(sid, team="larks")
    monkeypatch.setenv("JUPYTERHUB_USER", "owls")
    paths = ch.case_paths(sid, "liver_000")
    assert all(p.is_file() for p in paths.values())
    assert paths["truth"].parent == phases["validation"] / "labelsTr"
    with pytest.raises(ChallengeError, match="is not one of team 'owls'"):
        ch.case_paths(other, "liver_000")
    calls = []
    fake = types.ModuleType("medai_lab.widgets")
    fake.view = lambda image, labels=None, prediction=None: calls.append(
        (image, labels, prediction)
    )  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "medai_lab.widgets", fake)
    ch.view(sid, "liver_001")
    assert calls == [tuple(ch.case_paths(sid, "liver_001").values())]
    board = ch.leaderboard()
    assert list(board["team"]) == ["owls", "larks"]
    html = ch.leaderboard_html()
    assert "owls" in html and "<table" in html
    widget = ch.leaderboard_widget()
    assert "larks" in widget.children[1].value


def test_hidden_phase_shows_no_cases(make_challenge: Any, tmp_path: Path) -> None:
    ch = make_challenge()
    sid = ch.submit(write_package(tmp_path / "pkg", HONEST), team="owls", phase="test")["id"]
    ch.evaluate(track=False)
    assert "cases" not in ch.result(sid, team="owls")
    assert "cases" in ch.result(sid, team=None)  # the instructor sees everything
    with pytest.raises(ChallengeError, match="hidden: only aggregate scores"):
        ch.case_paths(sid, "liver_000", team="owls")


def test_command_line_round_trip(
    tmp_path: Path, phases: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "hack"
    args = ["challenge", "create", str(root), "--task", "liver"]
    args += ["--validation", str(phases["validation"]), "--test", str(phases["test"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "phase test (hidden): 3 cases" in out and "phase validation (visible): 2 cases" in out
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    pkg = write_package(tmp_path / "pkg", HONEST)
    assert main(["challenge", "submit", str(root), str(pkg), "--team", "owls"]) == 0
    assert (
        main(["challenge", "submit", str(root), str(pkg), "--team", "owls", "--phase", "test"]) == 0
    )
    capsys.readouterr()
    assert main(["challenge", "status", str(root)]) == 0
    assert capsys.readouterr().out.count("queued") == 2
    assert main(["challenge", "evaluate", str(root), "--no-track"]) == 0
    assert "evaluated 2 submission(s)" in capsys.readouterr().out
    html, csv = tmp_path / "board.html", tmp_path / "board.csv"
    assert main(["challenge", "leaderboard", str(root), "--phase", "test", "--html", str(html),
                 "--csv", str(csv)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "owls" in out and "hidden test set" in out and "<td>owls</td>" in html.read_text()
    assert pd.read_csv(csv)["team"].tolist() == ["owls"]
    assert main(["challenge", "status", str(root), "--id", "2", "--team", "owls", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["hidden"] and "cases" not in res and res["score"]["n_cases"] == 3
    assert main(["challenge", "status", str(root), "--id", "1", "--team", "owls"]) == 0
    assert "liver_000 liver: ok" in capsys.readouterr().out
    assert main(["challenge", "leaderboard", str(tmp_path)]) == 2
    assert "not a challenge folder" in capsys.readouterr().err

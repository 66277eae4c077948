"""Scores of a submission and the ranking of teams.

Per-case metrics come from :func:`medai_lab.evaluation.evaluate_dirs` with the challenge's
labels and NSD tolerance, so they are the numbers ``medai-lab evaluate`` prints for the same
predictions. A submission's score per metric is the mean over cases of the case's mean over the
scored labels (HD95 undefined for a case, one mask empty, is left out as in the evaluation
report and counted); its 95 % CI comes from :func:`medai_lab.evaluation.summarize` on that
per-case table (the same percentile bootstrap). With one scored label this is exactly the
evaluation summary.

Ranking: teams (their best submission) are ordered by the spec's ranking metrics in turn
(e.g. mean Dice, ties broken by mean HD95); an undefined mean ranks last. Teams equal on every
ranking metric share a rank (competition ranking, 1 1 3) and are listed earlier submission
first. Rank stability: cases are resampled with replacement (the same resample for every team)
and teams re-ranked the same way, giving each team's rank interval and chance of ranking first;
k teams tied for first in a resample get 1/k of it each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medai_lab.challenge.spec import RankKey, Spec

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("dice", "hd95", "nsd")


def evaluate_predictions(
    spec: Spec, pred_dir: Path, truth_dir: Path, out_csv: Path
) -> pd.DataFrame:
    """Per-case table of ``pred_dir`` against the phase's labels (written to ``out_csv``)."""
    from medai_lab.evaluation import evaluate_dirs

    return evaluate_dirs(
        pred_dir,
        truth_dir,
        labels=spec.labels,
        out_csv=out_csv,
        nsd_tolerance=spec.nsd_tolerance_mm,
        workers=1,
        progress=False,
    )


def case_means(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case: each metric averaged over the scored labels (NaN-aware)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN HD95 of a case stays NaN
        table = df.groupby("case", sort=True)[list(METRICS)].agg(
            lambda s: float(np.nanmean(s.to_numpy(float))) if s.notna().any() else math.nan
        )
    return table.reset_index()


def aggregate(df: pd.DataFrame, spec: Spec) -> dict[str, Any]:
    """Mean and 95 % CI of each metric over cases, plus the per-label evaluation summary."""
    from medai_lab.evaluation import summarize

    per_case = case_means(df)
    # the first label's bootstrap stream: with one scored label this is the evaluation summary
    mean_table = per_case.assign(label=min(spec.labels), label_name="mean")
    overall = summarize(mean_table, n_boot=spec.bootstrap).iloc[0].to_dict()
    out: dict[str, Any] = {}
    for m in METRICS:
        for stat in ("mean", "ci_low", "ci_high"):
            out[f"{m}_{stat}"] = float(overall[f"{m}_{stat}"])
    per_label = summarize(df, n_boot=spec.bootstrap)
    out["per_label"] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in per_label.to_dict("records")
    ]
    return out


def sort_key(entry: dict[str, Any], ranking: Sequence[RankKey]) -> tuple[float, ...]:
    """Ascending sort key of a scored entry (``<metric>_mean`` values; NaN last)."""
    key: list[float] = []
    for k in ranking:
        value = entry.get(f"{k.metric}_mean")
        if value is None or math.isnan(float(value)):
            key.append(math.inf)
        else:
            key.append(-float(value) if k.order == "desc" else float(value))
    key.append(float(entry.get("id", 0)))  # full tie: the earlier submission first
    return tuple(key)


def rank_entries(entries: list[dict[str, Any]], ranking: Sequence[RankKey]) -> list[dict[str, Any]]:
    """Best submission per team, ordered by the ranking rule, with ``rank`` set (1 = first)."""
    best: dict[str, dict[str, Any]] = {}
    for e in entries:
        team = e["team"]
        if team not in best or sort_key(e, ranking) < sort_key(best[team], ranking):
            best[team] = e
    ordered = sorted(best.values(), key=lambda e: sort_key(e, ranking))
    out: list[dict[str, Any]] = []
    for i, e in enumerate(ordered):
        tied = out and sort_key(e, ranking)[:-1] == sort_key(out[-1], ranking)[:-1]
        out.append({**e, "rank": out[-1]["rank"] if tied else i + 1})  # 1, 1, 3: shared ranks
    return out


def rank_stability(
    tables: Sequence[pd.DataFrame], ranking: Sequence[RankKey], n_boot: int = 1000, seed: int = 0
) -> list[dict[str, float]]:
    """Bootstrap rank distribution of ranked submissions (their per-case tables, in rank order).

    Returns, per submission: ``rank_low`` / ``rank_high`` (2.5th / 97.5th percentile of its
    rank over resamples), ``rank_median`` and ``p_first`` (share of resamples where it is first).
    Cases common to all tables are resampled; an empty table ranks last.
    """
    n = len(tables)
    if n == 0:
        return []
    means = [case_means(t).set_index("case") if len(t) else None for t in tables]
    common = sorted(set.intersection(*[set(m.index) for m in means if m is not None] or [set()]))
    if not common:
        return [
            {
                "rank_low": i + 1.0,
                "rank_high": i + 1.0,
                "rank_median": i + 1.0,
                "p_first": float(i == 0),
            }
            for i in range(n)
        ]
    # values[t, k, c]: team t, ranking metric k, case c
    values = np.full((n, len(ranking), len(common)), np.nan)
    for t, m in enumerate(means):
        if m is not None:
            for k, key in enumerate(ranking):
                values[t, k] = m.loc[common, key.metric].to_numpy(float)
    if n_boot > 0:
        idx = np.random.default_rng(seed).integers(0, len(common), size=(n_boot, len(common)))
    else:  # no resampling: the ranks of the cases as they are
        n_boot, idx = 1, np.arange(len(common))[None]
    ranks = np.empty((n_boot, n))
    first = np.zeros(n)  # share of resamples in first place; k teams tied for it get 1/k each
    for b in range(n_boot):
        sample = values[:, :, idx[b]]
        counts = np.sum(~np.isnan(sample), axis=2)
        sums = np.nansum(sample, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        keys = []
        for k, key in enumerate(ranking):
            col = -mean[:, k] if key.order == "desc" else mean[:, k]
            keys.append(np.where(np.isnan(col), np.inf, col))
        # competition rank: 1 + the number of teams strictly better on the ranking keys
        table = np.stack(keys, axis=1)  # (team, key)
        better = np.zeros((n, n), dtype=bool)  # better[s, t]: team s ranks above team t
        undecided = np.ones((n, n), dtype=bool)
        for k in range(table.shape[1]):
            col = table[:, k]
            better |= undecided & (col[:, None] < col[None, :])
            undecided &= col[:, None] == col[None, :]
        ranks[b] = 1 + better.sum(axis=0)
        leaders = ranks[b] == 1
        first[leaders] += 1.0 / leaders.sum()
    low, med, high = np.percentile(ranks, [2.5, 50, 97.5], axis=0)
    return [
        {"rank_low": float(low[t]), "rank_high": float(high[t]), "rank_median": float(med[t]),
         "p_first": float(first[t] / n_boot)}
        for t in range(n)
    ]  # fmt: skip

"""Leak-safe feedback for hidden phases: what a team may learn from a score without probing.

A team that sees exact per-case results of a hidden test set can learn the labels: submit a
model that changes one case, read which number moved (the "leaderboard probing" attack of
Whitehill 2017 and the Kaggle public/private split). Settings, per phase (``feedback:`` in the
spec, hidden phases only), and what each protects against:

``precision`` (decimal places, e.g. 2)
    Shown means are rounded. A change to one case of n moves the mean by about 1/n of that
    case's change; rounding hides changes smaller than the last digit, so single-case probes
    need many submissions to read anything.
``noise`` (standard deviation, e.g. 0.005)
    Gaussian noise added to shown means (Dice, NSD; relative for HD95 in mm), drawn once
    per submission from a seeded generator (challenge name + submission id): asking for the
    same result again returns the same value, so repeated queries do not average the noise
    away; only new submissions (capped per day) give new draws.
``subset`` (share of cases, e.g. 0.5)
    Shown scores are computed on a random part of the cases, the same part for every
    submission and never told to teams: a probe on a case outside it shows nothing, and
    overfitting to the shown score is not rewarded by the final ranking on all cases.

Always, in hidden phases: no per-case rows, no per-case timings, no failure text (only the
categories), and the daily submission cap is enforced by the database itself
(:mod:`medai_lab.challenge.store`). The instructor's view (``team=None``) is never altered.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from medai_lab.challenge.spec import Feedback, Spec

METRICS = ("dice", "hd95", "nsd")


def shown_cases(cases: list[str], share: float, seed_text: str) -> list[str]:
    """The cases the shown scores use: a fixed random ``share`` of them (at least one)."""
    if share >= 1.0 or not cases:
        return sorted(cases)
    ordered = sorted(cases, key=lambda c: hashlib.sha256(f"{seed_text}/{c}".encode()).hexdigest())
    return sorted(ordered[: max(1, math.ceil(share * len(cases)))])


def public_score(
    spec: Spec,
    feedback: Feedback,
    submission_id: int,
    score: dict[str, Any],
    metric_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The score a team sees in a hidden phase (see module docstring).

    ``score`` is the stored aggregate; ``metric_rows`` the per-case rows (used only for
    ``subset``). Confidence intervals and per-label summaries are dropped when any setting is
    active (they would reveal the unrounded values); failure counts are kept.
    """
    if not feedback.active:
        return score
    out = {
        k: v for k, v in score.items() if k in ("n_cases", "n_failed", "failures", "mlflow_run_id")
    }
    means = {m: score.get(f"{m}_mean") for m in METRICS}
    if feedback.subset < 1.0 and metric_rows:
        import pandas as pd

        from medai_lab.challenge.scoring import case_means

        table = case_means(pd.DataFrame(metric_rows)).set_index("case")
        keep = shown_cases(list(table.index), feedback.subset, f"{spec.name}/subset")
        for m in METRICS:
            values = table.loc[keep, m].to_numpy(float)
            means[m] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        out["shown_cases"] = len(keep)
    rng = np.random.default_rng(_seed(f"{spec.name}/noise/{submission_id}"))
    for m in METRICS:
        value = means[m]
        if value is None or not math.isfinite(float(value)):
            out[f"{m}_mean"] = None
            continue
        value = float(value)
        if feedback.noise > 0:
            draw = float(rng.normal(0.0, feedback.noise))
            if m == "hd95":  # millimetres: relative noise
                value = max(0.0, value * (1.0 + draw))
            else:
                value = min(1.0, max(0.0, value + draw))
        if feedback.precision is not None:
            value = round(value, feedback.precision)
        out[f"{m}_mean"] = value
    out["feedback"] = {
        "precision": feedback.precision,
        "noise": feedback.noise,
        "subset": feedback.subset,
    }
    return out


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

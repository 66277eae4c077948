"""The leaderboard of a phase: a table, a plain-text rendering, an HTML page, a notebook widget.

One row per team (its best scored submission, see :mod:`medai_lab.challenge.scoring`): rank,
mean Dice / HD95 / NSD with 95 % bootstrap CIs, failed cases, and rank stability (the 95 %
interval of the team's rank over case resamples and how often it came first). Teams equal on
every ranking metric share a rank, shown as ``1=``, and share the chance of coming first. Only
aggregates are shown, in hidden and visible phases alike.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from medai_lab.challenge.scoring import rank_entries, rank_stability
from medai_lab.challenge.spec import Phase, Spec

if TYPE_CHECKING:
    import pandas as pd

    from medai_lab.challenge.api import Challenge

COLUMNS = [
    "rank", "team", "submission", "submitted", "format",
    "dice", "dice_ci_low", "dice_ci_high", "hd95", "hd95_ci_low", "hd95_ci_high",
    "nsd", "nsd_ci_low", "nsd_ci_high", "failed_cases", "n_cases",
    "rank_low", "rank_high", "p_first",
]  # fmt: skip


def build(challenge: Challenge, phase: str, public: bool = False) -> pd.DataFrame:
    """The ranked table (columns :data:`COLUMNS`) of ``phase``.

    ``public``: what teams see of a hidden phase with ``feedback`` settings: the shown
    (rounded / noisy / partial) means, ranked by them, without CIs or rank intervals.
    """
    import pandas as pd

    spec = challenge.spec
    entries = challenge.store.scored(phase)
    feedback = spec.phase(phase).feedback
    if public and spec.phase(phase).hidden and feedback.active:
        return _public(challenge, entries, feedback)
    ranked = rank_entries(entries, spec.ranking)
    tables = [pd.DataFrame(challenge.store.metric_rows(int(e["id"]))) for e in ranked]
    stability = rank_stability(tables, spec.ranking, n_boot=spec.bootstrap)
    rows = []
    for e, st in zip(ranked, stability, strict=True):
        rows.append(
            {
                "rank": e["rank"],
                "team": e["team"],
                "submission": int(e["id"]),
                "submitted": e["created_at"],
                "format": e["format"],
                **{f"{m}": _num(e[f"{m}_mean"]) for m in ("dice", "hd95", "nsd")},
                **{
                    f"{m}_{s}": _num(e[f"{m}_{s}"])
                    for m in ("dice", "hd95", "nsd")
                    for s in ("ci_low", "ci_high")
                },
                "failed_cases": int(e["n_failed"]),
                "n_cases": int(e["n_cases"]),
                "rank_low": st["rank_low"],
                "rank_high": st["rank_high"],
                "p_first": st["p_first"],
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _public(challenge: Challenge, entries: list[dict[str, Any]], feedback: Any) -> pd.DataFrame:
    import pandas as pd

    from medai_lab.challenge.feedback import public_score

    spec, shown = challenge.spec, []
    for e in entries:
        rows = challenge.store.metric_rows(int(e["id"]))
        score = public_score(spec, feedback, int(e["id"]), e, rows)
        shown.append({**e, **{f"{m}_mean": score[f"{m}_mean"] for m in ("dice", "hd95", "nsd")}})
    out = []
    for e in rank_entries(shown, spec.ranking):
        row = dict.fromkeys(COLUMNS, math.nan)
        row.update(rank=e["rank"], team=e["team"], submission=int(e["id"]),
                   submitted=e["created_at"], format=e["format"],
                   failed_cases=int(e["n_failed"]), n_cases=int(e["n_cases"]))  # fmt: skip
        row.update({m: _num(e[f"{m}_mean"]) for m in ("dice", "hd95", "nsd")})
        out.append(row)
    return pd.DataFrame(out, columns=COLUMNS)


def format_table(board: pd.DataFrame, spec: Spec, phase: Phase) -> str:
    """A plain-text table for the terminal."""
    tol = f"@{spec.nsd_tolerance_mm:g}mm"
    head = ["#", "team", "Dice [95% CI]", "HD95 mm [95% CI]", f"NSD{tol} [95% CI]",
            "failed", "rank 95%", "P(first)", "sub"]  # fmt: skip
    lines = [head]
    shown = _rank_labels(board)
    for r, rank in zip(board.to_dict("records"), shown, strict=True):
        lines.append(
            [
                rank,
                str(r["team"]),
                _ci(r, "dice"),
                _ci(r, "hd95", "{:.2f}"),
                _ci(r, "nsd"),
                f"{r['failed_cases']}/{r['n_cases']}",
                _rank_range(r),
                _p(r["p_first"]),
                str(r["submission"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    title = f"{spec.title}: phase {phase.name}" + (" (hidden test set)" if phase.hidden else "")
    rule = "ranked by " + ", then ".join(
        f"{k.metric} ({'higher' if k.order == 'desc' else 'lower'} is better)" for k in spec.ranking
    )
    if board.empty:
        return f"{title}\nno scored submissions yet"
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip
    return f"{title}; {rule}\n{body}"


def to_html(board: pd.DataFrame, spec: Spec, phase: Phase, *, page: bool = True) -> str:
    """An HTML table (a whole page with ``page``); every value escaped."""
    esc = html.escape
    head = ["#", "team", "Dice [95% CI]", "HD95 mm [95% CI]", f"NSD @{spec.nsd_tolerance_mm:g} mm",
            "failed cases", "rank (95%)", "P(first)"]  # fmt: skip
    rows = []
    for r, rank in zip(board.to_dict("records"), _rank_labels(board), strict=True):
        cells = [rank, str(r["team"]), _ci(r, "dice"), _ci(r, "hd95", "{:.2f}"),
                 _ci(r, "nsd"), f"{r['failed_cases']}/{r['n_cases']}", _rank_range(r),
                 _p(r["p_first"])]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(head)}">no scored submissions yet</td></tr>')
    rule = ", then ".join(
        f"{k.metric} ({'higher' if k.order == 'desc' else 'lower'} is better)" for k in spec.ranking
    )
    hidden = " &middot; hidden test set: aggregate scores only" if phase.hidden else ""
    table = (
        f'<table class="medai-leaderboard"><caption>{esc(spec.title)} &middot; phase '
        f"{esc(phase.name)}{hidden}<br><small>ranked by {esc(rule)}; 95% bootstrap CIs over "
        f"cases; rank interval from {spec.bootstrap} case resamples</small></caption>"
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table>"
    )
    style = (
        "<style>.medai-leaderboard{border-collapse:collapse;font-family:sans-serif}"
        ".medai-leaderboard td,.medai-leaderboard th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}.medai-leaderboard caption{text-align:left;margin-bottom:6px}</style>"
    )
    if not page:
        return style + table
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(spec.title)}</title>'
        f"{style}</head><body>{table}</body></html>\n"
    )


def widget(challenge: Challenge, phase: str) -> Any:
    """An ipywidgets box: the leaderboard and a refresh button."""
    import ipywidgets as w

    spec, ph = challenge.spec, challenge.spec.phase(phase)
    view = w.HTML()
    button = w.Button(description="Refresh", icon="refresh")

    def refresh(_: Any = None) -> None:
        view.value = to_html(build(challenge, phase), spec, ph, page=False)

    button.on_click(refresh)
    refresh()
    return w.VBox([button, view])


def _rank_labels(board: pd.DataFrame) -> list[str]:
    """Each row's rank as shown: ``2=`` where teams share it (competition ranking)."""
    counts = board["rank"].value_counts() if len(board) else {}
    return [f"{r}=" if counts[r] > 1 else str(r) for r in board["rank"]]


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _ci(r: dict[str, Any], metric: str, fmt: str = "{:.3f}") -> str:
    def f(x: float) -> str:
        return "n/a" if x is None or math.isnan(x) else fmt.format(x)

    return f"{f(r[metric])} [{f(r[f'{metric}_ci_low'])}, {f(r[f'{metric}_ci_high'])}]"


def _rank_range(r: dict[str, Any]) -> str:
    if math.isnan(r["rank_low"]):
        return "n/a"  # a public view of a hidden phase: no rank intervals
    low, high = round(r["rank_low"]), round(r["rank_high"])
    return str(low) if low == high else f"{low}-{high}"

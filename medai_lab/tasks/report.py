"""A self-contained HTML report of trained tasks: summary table, per-case tables, overlays.

Images are embedded (base64 PNG) so the file can be mailed or opened offline as it is.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medai_lab import atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.pass { color: #087f23; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
code { background: #f4f4f4; padding: 2px 4px; }
"""


def summary_rows(outcomes: Sequence[Any], threshold: float) -> list[dict[str, Any]]:
    """One row per task: Dice per label and mean, HD95, seconds, MLflow run, pass/fail."""
    rows = []
    for o in outcomes:
        dice = o.dice()
        hd = o.eval_table.groupby("label_name")["hd95"].mean()
        rows.append(
            {
                "task": o.task,
                "dice_mean": dice["mean"],
                **{f"dice {name}": dice[name] for name in o.labels.values()},
                "hd95_mm": float(hd.mean()),
                "train_s": o.seconds,
                "cases": int(o.eval_table["case"].nunique()),
                "mlflow_run": o.run_id or "",
                "passed": dice["mean"] >= threshold,
            }
        )
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as plain text columns (for the terminal)."""
    lines = [f"{'task':<7}{'Dice':>7}  {'HD95 mm':>8}  {'train s':>8}  per label"]
    for r in rows:
        labels = ", ".join(
            f"{k[5:]} {v:.3f}" for k, v in r.items() if k.startswith("dice ") and v == v
        )
        lines.append(
            f"{r['task']:<7}{r['dice_mean']:>7.3f}  {r['hd95_mm']:>8.1f}  {r['train_s']:>8.0f}  "
            f"{labels}"
        )
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_html_report(
    outcomes: Sequence[Any],
    path: str | os.PathLike[str],
    threshold: float,
    ui_command: str | None = None,
    title: str = "MedAI Lab demo",
) -> Path:
    """Write the report atomically to ``path``."""
    rows = summary_rows(outcomes, threshold)
    cols = ["task", "dice_mean", "hd95_mm", "train_s", "cases", "mlflow_run"]
    head = "".join(f"<th>{c}</th>" for c in [*cols, f"Dice &ge; {threshold:.2f}"])
    body = []
    for r in rows:
        cells = "".join(f"<td>{_fmt(r[c])}</td>" for c in cols)
        verdict = '<td class="pass">yes</td>' if r["passed"] else '<td class="fail">no</td>'
        body.append(f"<tr>{cells}{verdict}</tr>")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        "<p>Dice, HD95 (mm) and NSD from <code>medai-lab evaluate</code> on the validation "
        "cases, predicted by the exported TorchScript model on the images' own grids.</p>",
        f"<table><tr>{head}</tr>{''.join(body)}</table>",
    ]
    if ui_command:
        parts.append(f"<p>Open the runs in MLflow: <code>{html.escape(ui_command)}</code></p>")
    for o in outcomes:
        parts.append(f"<h2>{html.escape(o.task)}</h2>")
        table = o.eval_table[["case", "label_name", "dice", "hd95", "nsd"]]
        parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0))
        parts += [_img(p) for p in o.overlays.values() if Path(p).is_file()]
    parts.append("</body></html>")
    return atomic.write_text(path, "\n".join(parts))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return html.escape(str(value))

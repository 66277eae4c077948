"""What a de-identification run did, for a terminal or a notebook (counts, never values).

Inputs are named by their keyed pseudonyms (``in-<hex>``), never by their paths.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# audit column -> action counter key
COUNT_COLUMNS: dict[str, str] = {
    "removed": "X",
    "emptied": "Z",
    "dummied": "D",
    "uids_replaced": "U",
    "cleaned": "C",
    "kept": "K",
    "private_removed": "private_removed",
    "dates_shifted": "dates_shifted",
    "pseudonymised": "pseudonymised",
}


@dataclass
class DeidReport:
    """Rows of ``deid_audit.csv`` plus totals; renders as a table in Jupyter."""

    out_dir: Path
    rows: list[dict]
    seconds: float
    options: tuple[str, ...] = ()
    pixels: str = "off"
    totals: Counter[str] = field(init=False)
    pixel_totals: Counter[str] = field(init=False)

    def __post_init__(self) -> None:
        self.totals = Counter()
        self.pixel_totals = Counter()
        for row in self.rows:
            for col in COUNT_COLUMNS:
                self.totals[col] += int(row[col])
            self.pixel_totals[row.get("pixels") or "skipped"] += 1
            self.pixel_totals["text_boxes"] += int(row.get("text_boxes") or 0)

    @property
    def written(self) -> int:
        return sum(r["status"] == "deidentified" for r in self.rows)

    @property
    def quarantined(self) -> list[tuple[str, str]]:
        """(input pseudonym, reason) of every quarantined file."""
        return [(r["input"], r["reason"]) for r in self.rows if r["status"] == "quarantined"]

    def reasons(self) -> Counter[str]:
        """Quarantine reasons, grouped by their kind (the text before the first colon)."""
        return Counter(reason.split(":")[0] for _, reason in self.quarantined)

    def describe(self) -> str:
        rate = len(self.rows) / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"de-identified {self.written} of {len(self.rows)} files in {self.seconds:.1f} s "
            f"({rate:.0f} files/s); options: {', '.join(self.options) or 'none (Basic Profile)'}",
            "actions: " + ", ".join(f"{k} {v}" for k, v in self.totals.items() if v),
            self.describe_pixels(),
        ]
        if self.quarantined:
            kinds = "; ".join(f"{n} {k}" for k, n in self.reasons().most_common())
            where = self.out_dir / "quarantine"
            lines.append(f"quarantined {len(self.quarantined)} ({kinds}) in {where}")
        lines.append(f"audit: {self.out_dir / 'deid_audit.csv'}")
        return "\n".join(lines)

    def describe_pixels(self) -> str:
        """One line: the pixel policy and what it did (counts only)."""
        if self.pixels == "off":
            return "pixels: not checked (--pixels off; likely burned-in text quarantined by rule)"
        engines = sorted({r.get("ocr_engine", "") for r in self.rows} - {""})
        t = self.pixel_totals
        return (
            f"pixels ({self.pixels}, {', '.join(engines) or 'no file OCR-checked'}): "
            f"clean {t['clean']}, redacted {t['redacted']}, quarantined {t['quarantined']}, "
            f"not checked or no pixel data {t['skipped']}; text regions {t['text_boxes']}"
        )

    def to_frame(self):
        """The audit as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def _repr_html_(self) -> str:
        actions = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in self.totals.items()
        )
        quarantine = "".join(
            f"<tr><td>{html.escape(p)}</td><td>{html.escape(r)}</td></tr>"
            for p, r in self.quarantined
        )
        return (
            f"<b>De-identified {self.written} of {len(self.rows)} files</b> "
            f"in {self.seconds:.1f} s, options: {html.escape(', '.join(self.options) or 'none')}"
            f"<br>{html.escape(self.describe_pixels())}"
            f"<table><tr><th>action</th><th>attributes</th></tr>{actions}</table>"
            + (
                f"<b>Quarantined ({len(self.quarantined)})</b>"
                f"<table><tr><th>input</th><th>reason</th></tr>{quarantine}</table>"
                if quarantine
                else ""
            )
        )

    def __repr__(self) -> str:
        return self.describe()

"""A notebook widget to search a PACS, pick series and pull them (optionally de-identified).

>>> from medai_lab.pacs.widget import PacsBrowser
>>> PacsBrowser(DicomWebClient("http://127.0.0.1:8042/dicom-web"), out="data/raw")  # doctest: +SKIP

Built on ipywidgets (imported when the widget is made). Searching and pulling run in the
kernel; the progress bar follows the pull instance by instance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medai_lab.pacs.base import PacsClient
from medai_lab.pacs.query import PacsError, QueryFilter

_FIELDS = (
    ("patient_id", "Patient ID"),
    ("patient_name", "Name (* ?)"),
    ("modality", "Modality"),
    ("date_from", "Date from"),
    ("date_to", "Date to"),
    ("accession", "Accession"),
)


class PacsBrowser:
    """Search fields, a results table, series selection and a pull button with progress.

    Parameters
    ----------
    client
        A DICOMweb or DIMSE client (:mod:`medai_lab.pacs.dicomweb`, :mod:`medai_lab.pacs.dimse`).
    out
        Folder pulls go to.
    deidentifier
        Used when the "de-identify" box is ticked; default: the project key's Basic Profile.
    """

    def __init__(
        self, client: PacsClient, out: str | os.PathLike[str], deidentifier: Any = None
    ) -> None:
        import ipywidgets as w

        self.client, self.out, self._deid = client, Path(out), deidentifier
        self.rows: list[dict[str, str]] = []
        self.fields = {k: w.Text(description=label) for k, label in _FIELDS}
        self.search_button = w.Button(description="Search", icon="search")
        self.results = w.SelectMultiple(options=[], rows=8, layout=w.Layout(width="100%"))
        self.deid_box = w.Checkbox(value=True, description="de-identify (PS3.15)")
        self.pull_button = w.Button(description="Pull selected", icon="download")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="pull")
        self.status = w.HTML()
        self.search_button.on_click(lambda _: self._guard(self.search))
        self.pull_button.on_click(lambda _: self._guard(self.pull))
        grid = w.GridBox(
            list(self.fields.values()),
            layout=w.Layout(grid_template_columns="repeat(3, 1fr)"),
        )
        self.widget = w.VBox(
            [
                grid,
                self.search_button,
                self.results,
                w.HBox([self.deid_box, self.pull_button]),
                self.progress,
                self.status,
            ]
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _guard(self, action: Any) -> None:
        try:
            action()
        except PacsError as exc:  # one line for the user, as on the command line
            self.status.value = f"<b>error:</b> {exc}"

    def filter(self) -> QueryFilter:
        return QueryFilter.from_mapping({k: f.value.strip() for k, f in self.fields.items()})

    def search(self) -> list[dict[str, str]]:
        """Query series matching the fields; fills the results list."""
        from medai_lab.pacs.pull import select_series

        self.rows = select_series(self.client, self.filter())
        self.results.options = [(self._label(r), i) for i, r in enumerate(self.rows)]
        self.status.value = f"{len(self.rows)} series"
        return self.rows

    @staticmethod
    def _label(row: dict[str, str]) -> str:
        parts = [
            row.get("StudyDate", ""),
            row.get("Modality", ""),
            row.get("SeriesDescription", "") or "(no description)",
            f"{row.get('NumberOfSeriesRelatedInstances', '?')} images",
        ]
        return "  ".join(p for p in parts if p)

    def pull(self) -> Any:
        """Pull the selected series (all listed ones when none is selected)."""
        from medai_lab.pacs.pull import pull

        chosen = [self.rows[i] for i in self.results.value] or list(self.rows)
        if not chosen:
            raise PacsError("search first, then select series to pull")
        deid = self._deidentifier() if self.deid_box.value else None
        total = 0
        for row in chosen:
            self.progress.value, self.progress.max = 0, 1
            flt = QueryFilter(
                study_uid=row["StudyInstanceUID"], series_uid=row["SeriesInstanceUID"]
            )
            report = pull(
                self.client,
                flt,
                self.out,
                deidentifier=deid,
                progress=False,
                on_progress=self._advance,
            )
            total += report.instances_stored
        self.status.value = f"pulled {len(chosen)} series ({total} new instances) into {self.out}"
        return total

    def _advance(self, done: int, total: int) -> None:
        self.progress.max, self.progress.value = max(total, 1), done

    def _deidentifier(self) -> Any:
        if self._deid is None:
            from medai_lab.deid import Deidentifier
            from medai_lab.deid.keys import load_or_create_key

            self._deid = Deidentifier(load_or_create_key(None), pixels="redact")
        return self._deid

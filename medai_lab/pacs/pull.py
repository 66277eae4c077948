"""``pull``: find the series a filter selects and bring them into a :class:`RetrievalStore`."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.pacs.base import PacsClient
from medai_lab.pacs.query import PacsError, QueryFilter
from medai_lab.pacs.store import RetrievalStore


@dataclass
class PullReport:
    """Counts of one pull (no identifiers: safe to print and log)."""

    series_pulled: int = 0
    series_skipped: int = 0
    instances_stored: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    out_dir: Path | None = None

    def describe(self) -> str:
        lines = [
            f"pulled {self.series_pulled} series ({self.instances_stored} instances), "
            f"{self.series_skipped} already complete, into {self.out_dir}"
        ]
        for reason, n in sorted(self.quarantined.items()):
            lines.append(f"  not stored (de-identification refused) x{n}: {reason}")
        return "\n".join(lines)


def select_series(client: PacsClient, flt: QueryFilter) -> list[dict[str, str]]:
    """Series rows (with StudyInstanceUID) that ``flt`` selects; studies first, then series."""
    if flt.study_uid and flt.series_uid:
        rows = client.query(flt, "SERIES")
    else:
        rows = []
        for study in client.query(flt, "STUDY"):
            uid = study.get("StudyInstanceUID", "")
            if not uid:
                continue
            sub = QueryFilter(study_uid=uid, series_uid=flt.series_uid, modality=flt.modality)
            rows.extend(client.query(sub, "SERIES"))
    seen, out = set(), []
    for row in rows:
        key = row.get("SeriesInstanceUID", "")
        if key and key not in seen:
            seen.add(key)
            out.append(row)
    return out


def pull(
    client: PacsClient,
    flt: QueryFilter,
    out_dir: str | os.PathLike[str],
    *,
    deidentifier: Any = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    """Retrieve every series ``flt`` selects into ``out_dir``; resumable, atomic, counted.

    A series already complete (same instance count) is skipped; a partial one fetches only
    its missing instances. PacsError when nothing matches or a series arrives incomplete.
    ``on_progress(done, total)`` is called per received instance (e.g. a notebook widget).
    """
    from medai_lab.progress import progress_bar

    store = RetrievalStore(out_dir, deidentifier)
    series = select_series(client, flt)
    if not series:
        raise PacsError("no series match the query")
    report = PullReport(out_dir=store.out)
    # (study, series, SOP UIDs or the reported count, what is missing: UIDs or placeholders)
    plans: list[tuple[str, str, list[str] | int, list[Any]]] = []
    for row in series:
        study_uid, series_uid = row["StudyInstanceUID"], row["SeriesInstanceUID"]
        reported = row.get("NumberOfSeriesRelatedInstances", "")
        if reported.isdigit() and store.stored_count(series_uid) == 0:
            # Nothing of it here yet: fetch the whole series without listing it first (an
            # instance listing costs Orthanc ~1 s per 300); the count is checked afterwards.
            plans.append((study_uid, series_uid, int(reported), [None] * int(reported)))
            continue
        sops = client.instances(study_uid, series_uid)
        if reported.isdigit() and int(reported) != len(sops):
            raise PacsError(
                f"the PACS reports {reported} instances in a series but lists {len(sops)}"
            )
        if store.is_complete(series_uid, len(sops)):
            report.series_skipped += 1
            continue
        plans.append((study_uid, series_uid, sops, store.missing(series_uid, sops)))
    total = sum(len(missing) for *_, missing in plans)
    lock = threading.Lock()
    done = [0]
    with progress_bar(total=total, desc="pull", unit="inst", enabled=progress) as bar:
        for study_uid, series_uid, listed, missing in plans:
            put = store.sink_for(series_uid)

            def sink(data: bytes, put: Any = put) -> None:
                put(data)
                with lock:
                    bar.update(1)
                    done[0] += 1
                    if on_progress is not None:
                        on_progress(done[0], total)

            if missing:
                whole = isinstance(listed, int) or len(missing) == len(listed)
                client.retrieve(study_uid, series_uid, None if whole else missing, sink)
            store.mark_complete(series_uid, listed)
            report.series_pulled += 1
            report.instances_stored += len(missing)
    report.quarantined = store.quarantined
    report.instances_stored -= sum(store.quarantined.values())
    return report

"""The interface both PACS clients (DICOMweb and DIMSE) implement.

Retrieval hands each received instance to a *sink* as complete DICOM Part 10 bytes; the
retrieval store (``medai_lab.pacs.store``) decides where they go (atomically, de-identified or
not). Sinks may be called from several threads at once and must be thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from medai_lab.pacs.query import QueryFilter

Sink = Callable[[bytes], None]


@dataclass
class StoreReport:
    """What an upload sent: instance counts and failures (file name -> reason)."""

    sent: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class PacsClient(Protocol):
    """One PACS connection profile (no connection is held between calls)."""

    def echo(self) -> float:
        """Round trip in seconds (C-ECHO, or a DICOMweb probe); PacsError when it fails."""

    def query(self, flt: QueryFilter, level: str = "STUDY") -> list[dict[str, str]]:
        """Rows of keyword -> string at ``STUDY``, ``SERIES`` or ``IMAGE`` level."""

    def instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of one series as the PACS reports them."""

    def retrieve(
        self,
        study_uid: str,
        series_uid: str,
        sop_uids: Sequence[str] | None,
        sink: Sink,
    ) -> int:
        """Fetch a series (all instances, or only ``sop_uids``) into ``sink``; count received."""

    def store(self, files: Iterable[Path]) -> StoreReport:
        """Send DICOM files to the PACS (STOW-RS or C-STORE)."""

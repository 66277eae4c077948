"""What users search a PACS by, and what comes back: one model for DICOMweb and DIMSE.

A :class:`QueryFilter` turns into QIDO-RS query parameters or a C-FIND identifier; both
protocols answer with rows of DICOM keywords -> strings (:data:`RETURN_KEYS` per level).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date

from medai_lab.errors import MedaiError

LEVELS = ("STUDY", "SERIES", "IMAGE")

# Keywords asked for at each level (C-FIND return keys / QIDO includefield), as data.
RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "STUDY": (
        "StudyInstanceUID",
        "PatientID",
        "PatientName",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyDescription",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "SERIES": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "PatientID",
        "StudyDate",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    "IMAGE": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ),
}

_DATE = re.compile(r"^\d{8}$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class PacsError(MedaiError):
    """A PACS could not be reached, refused us, or answered something unusable."""


@dataclass(frozen=True)
class QueryFilter:
    """Matching keys. Empty fields match everything; ``patient_name`` may use ``*`` and ``?``.

    Dates are ``YYYYMMDD`` (or ``YYYY-MM-DD``); ``date_from``/``date_to`` make a range, either
    end may be open.
    """

    patient_id: str | None = None
    patient_name: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    modality: str | None = None
    accession: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value:
                object.__setattr__(self, name, normalize_date(value, name))
        for name in ("study_uid", "series_uid"):
            value = getattr(self, name)
            if value and not _UID.match(value):
                raise PacsError(f"{name.replace('_', ' ')} is not a DICOM UID: {value!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PacsError(f"date range is empty: {self.date_from} is after {self.date_to}")

    def study_date(self) -> str | None:
        """The DICOM range matcher: ``A-B``, ``A-``, ``-B`` or ``A``; None without dates."""
        if not (self.date_from or self.date_to):
            return None
        if self.date_from and self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from or ''}-{self.date_to or ''}"

    def keys(self) -> dict[str, str]:
        """Matching keys as DICOM keywords -> values (only the ones that are set)."""
        out = {
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "StudyInstanceUID": self.study_uid,
            "SeriesInstanceUID": self.series_uid,
            "AccessionNumber": self.accession,
            "StudyDate": self.study_date(),
        }
        keys = {k: v for k, v in out.items() if v}
        if self.modality:
            keys["Modality"] = self.modality
        return keys

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> QueryFilter:
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in values.items() if k in names and v not in (None, "")})


def normalize_date(value: str, what: str = "date") -> str:
    """``YYYYMMDD`` from ``YYYYMMDD`` or ``YYYY-MM-DD``; a real calendar date or an error."""
    text = value.strip().replace("-", "")
    if not _DATE.match(text):
        raise PacsError(f"{what.replace('_', ' ')} must be YYYYMMDD or YYYY-MM-DD, got {value!r}")
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise PacsError(f"{what.replace('_', ' ')} is not a calendar date: {value!r}") from None
    return text

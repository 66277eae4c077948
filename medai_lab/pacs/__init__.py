"""PACS connectivity: DICOMweb and DIMSE clients, resumable pulls, a workshop Orthanc.

Importing this package is light; clients load requests / dicomweb-client / pynetdicom on use.

>>> from medai_lab.pacs import QueryFilter, pull
>>> from medai_lab.pacs.dicomweb import DicomWebClient            # doctest: +SKIP
>>> pull(DicomWebClient(url), QueryFilter(patient_id="X"), "out")  # doctest: +SKIP
"""

from medai_lab.pacs.base import PacsClient, StoreReport
from medai_lab.pacs.pull import PullReport, pull, select_series
from medai_lab.pacs.query import LEVELS, RETURN_KEYS, PacsError, QueryFilter
from medai_lab.pacs.store import RetrievalStore

__all__ = [
    "LEVELS",
    "RETURN_KEYS",
    "PacsClient",
    "PacsError",
    "PullReport",
    "QueryFilter",
    "RetrievalStore",
    "StoreReport",
    "pull",
    "select_series",
]

"""Query filters and the retrieval store (atomic files, journal, resume, de-identification)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medai_lab.pacs import PacsError, QueryFilter, RetrievalStore
from medai_lab.pacs.store import JOURNAL


def test_filter_keys_dates_and_validation() -> None:
    flt = QueryFilter(patient_id="P1", modality="CT", date_from="2020-01-02", date_to="20200105")
    assert flt.keys() == {"PatientID": "P1", "StudyDate": "20200102-20200105", "Modality": "CT"}
    assert QueryFilter(date_to="2021-03-04").study_date() == "-20210304"
    assert QueryFilter(date_from="20210304", date_to="20210304").study_date() == "20210304"
    assert QueryFilter().keys() == {}
    with pytest.raises(PacsError, match="calendar date"):
        QueryFilter(date_from="2021-02-30")
    with pytest.raises(PacsError, match="YYYYMMDD"):
        QueryFilter(date_to="yesterday")
    with pytest.raises(PacsError, match="empty"):
        QueryFilter(date_from="20220101", date_to="20210101")
    with pytest.raises(PacsError, match="not a DICOM UID"):
        QueryFilter(study_uid="1.2.3/../../etc")


def _instances(n: int) -> list[bytes]:
    """``n`` real CT instances of one series with distinct SOP Instance UIDs."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    out = []
    for i in range(n):
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def test_store_writes_atomically_and_resumes_from_the_journal(tmp_path: Path) -> None:
    data = _instances(4)
    ds = pydicom.dcmread(io.BytesIO(data[0]))
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    sops = [pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID for d in data]
    store = RetrievalStore(tmp_path / "out")
    for d in data[:2]:
        path = store.put(series, d)
        assert (
            path
            == tmp_path / "out" / study / series / f"{pydicom.dcmread(path).SOPInstanceUID}.dcm"
        )
        assert path.read_bytes() == d
    with pytest.raises(PacsError, match="2 of 4 instances stored"):
        store.mark_complete(series, sops)
    # a crash tore the journal's last line: the torn record is ignored, the rest is kept
    with open(tmp_path / "out" / JOURNAL, "a") as fh:
        fh.write('{"series": "x", "inst')
    again = RetrievalStore(tmp_path / "out")
    assert again.missing(series, sops) == sops[2:]
    assert not again.is_complete(series)
    for d in data[2:]:
        again.put(series, d)
    again.mark_complete(series, sops)
    assert RetrievalStore(tmp_path / "out").is_complete(series, 4)
    assert not RetrievalStore(tmp_path / "out").is_complete(series, 5)  # the PACS has more now
    # a stored file that went missing makes the series incomplete again
    (tmp_path / "out" / study / series / f"{sops[0]}.dcm").unlink()
    fresh = RetrievalStore(tmp_path / "out")
    assert not fresh.is_complete(series, 4) and fresh.missing(series, sops) == sops[:1]
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".partial")]
    assert not leftovers


def test_store_refuses_foreign_and_unreadable_instances(tmp_path: Path) -> None:
    store = RetrievalStore(tmp_path)
    with pytest.raises(PacsError, match="another series"):
        store.put("1.2.3", _instances(1)[0])
    with pytest.raises(PacsError, match="unreadable"):
        store.put("1.2.3", b"\x00" * 200)


def test_deidentified_store_never_writes_source_identifiers(tmp_path: Path) -> None:
    from medai_lab.deid import Deidentifier

    data = _instances(2)
    ds = pydicom.dcmread(io.BytesIO(data[0]))
    deid = Deidentifier(b"k" * 32, pixels="off")
    store = RetrievalStore(tmp_path / "out", deid)
    paths = [store.put(ds.SeriesInstanceUID, d) for d in data]
    for path in paths:
        out = pydicom.dcmread(path)
        assert out.PatientIdentityRemoved == "YES"
        assert out.StudyInstanceUID != ds.StudyInstanceUID
        assert path.parts[-3:] == (out.StudyInstanceUID, out.SeriesInstanceUID, path.name)
    written = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for identifier in (ds.SOPInstanceUID, ds.SeriesInstanceUID, str(ds.PatientName)):
        assert identifier.encode() not in written  # neither in files nor in the journal
    journal = [json.loads(line) for line in (tmp_path / "out" / JOURNAL).read_text().splitlines()]
    assert len(journal) == 2 and all(len(r["instance"]) == 32 for r in journal)
    sops = [pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID for d in data]
    again = RetrievalStore(tmp_path / "out", deid)
    again.mark_complete(ds.SeriesInstanceUID, sops)
    assert RetrievalStore(tmp_path / "out", deid).is_complete(ds.SeriesInstanceUID, 2)


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb.dcm", "MR2_J2KR.dcm"]
)
def test_fast_uid_walk_agrees_with_pydicom(name: str) -> None:
    from medai_lab.pacs.store import _pydicom_uids, _uids, _walk_uids

    data = Path(get_testdata_file(name)).read_bytes()
    walked = _walk_uids(data)  # None where a sequence of undefined length comes first
    assert walked is None or walked == _pydicom_uids(data)
    assert _uids(data) == _pydicom_uids(data)

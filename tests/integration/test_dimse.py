"""The DIMSE client (C-ECHO/FIND/GET/MOVE/STORE) against the real Orthanc 1.10."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from medai_lab.pacs import PacsError, QueryFilter
from medai_lab.pacs.dimse import DimseClient
from medai_lab.pacs.server import OrthancServer, free_port

MOVE_AET = "MEDAI_MOVE"


def client(orthanc: OrthancServer, **kwargs) -> DimseClient:
    kwargs.setdefault("timeout", 10)
    return DimseClient("127.0.0.1", orthanc.dicom_port, orthanc.aet, **kwargs)


def move_client(orthanc: OrthancServer) -> DimseClient:
    """A C-MOVE client whose destination AE the PACS knows (registered over REST)."""
    port = free_port()
    orthanc.add_modality("medai", MOVE_AET, "127.0.0.1", port)
    return client(orthanc, move_port=port, move_aet=MOVE_AET)


def orthanc_instances(orthanc: OrthancServer) -> list[dict[str, str]]:
    """What Orthanc holds, from REST: one dict of simplified tags per instance."""
    ids = requests.get(f"{orthanc.url}/instances", auth=orthanc.auth, timeout=10).json()
    return [
        requests.get(
            f"{orthanc.url}/instances/{i}/simplified-tags", auth=orthanc.auth, timeout=10
        ).json()
        for i in ids
    ]


class Collect:
    """A sink keeping what it is given: SOP Instance UID -> (transfer syntax, PixelData)."""

    def __init__(self) -> None:
        self.got: dict[str, tuple[str, bytes]] = {}

    def __call__(self, data: bytes) -> None:
        assert data[128:132] == b"DICM"  # complete Part 10 bytes
        ds = pydicom.dcmread(io.BytesIO(data))
        self.got[ds.SOPInstanceUID] = (ds.file_meta.TransferSyntaxUID, ds.PixelData)


def originals(paths: list[Path]) -> dict[str, tuple[str, bytes]]:
    out = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        out[ds.SOPInstanceUID] = (ds.file_meta.TransferSyntaxUID, ds.PixelData)
    return out


def test_echo(orthanc: OrthancServer) -> None:
    seconds = client(orthanc).echo()
    assert 0 < seconds < 5


def test_wrong_called_aet_is_rejected_fast(orthanc: OrthancServer) -> None:
    start = time.monotonic()
    with pytest.raises(PacsError) as err:
        DimseClient("127.0.0.1", orthanc.dicom_port, "NOT_THE_PACS").echo()
    assert time.monotonic() - start < 2  # a rejection is final: no retries
    message = str(err.value)
    assert "association rejected" in message
    assert "called AE title 'NOT_THE_PACS' not recognised" in message
    assert "\n" not in message


def test_closed_port_is_refused_quickly() -> None:
    port = free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(PacsError, match=rf"connection refused by 127\.0\.0\.1:{port}") as err:
        DimseClient("127.0.0.1", port, "ANY", timeout=3).echo()
    assert time.monotonic() - start < 5  # two retries with backoff included
    assert "\n" not in str(err.value)


def test_unknown_host() -> None:
    with pytest.raises(PacsError, match=r"cannot resolve host 'no-such-pacs\.invalid'"):
        DimseClient("no-such-pacs.invalid", 104, "ANY").echo()


def test_store_then_query_matches_orthanc(
    orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    files = dicom_files["pydicom"]
    before = {p: p.read_bytes() for p in files}
    dimse = client(orthanc)
    report = dimse.store(files)
    assert (report.sent, report.failed) == (len(files), {})
    assert {p: p.read_bytes() for p in files} == before  # files never modified

    held = orthanc_instances(orthanc)
    assert {t["SOPInstanceUID"] for t in held} == set(originals(files))

    def studies(**filters: str) -> set[str]:
        rows = dimse.query(QueryFilter(**filters))
        return {row["StudyInstanceUID"] for row in rows}

    def expected(pick) -> set[str]:
        return {t["StudyInstanceUID"] for t in held if pick(t)}

    for pid in {t["PatientID"] for t in held}:
        assert studies(patient_id=pid) == expected(lambda t, pid=pid: t["PatientID"] == pid)
    dates = sorted({t["StudyDate"] for t in held})
    assert len(dates) >= 2
    assert studies(date_from=dates[0], date_to=dates[0]) == expected(
        lambda t: t["StudyDate"] == dates[0]
    )
    iso_last = f"{dates[-1][:4]}-{dates[-1][4:6]}-{dates[-1][6:]}"
    assert studies(date_from=dates[1], date_to=iso_last) == expected(
        lambda t: t["StudyDate"] >= dates[1]
    )
    for modality in {t["Modality"] for t in held}:
        assert studies(modality=modality) == expected(lambda t, m=modality: t["Modality"] == m)
        series = dimse.query(QueryFilter(modality=modality), "SERIES")
        assert {row["SeriesInstanceUID"] for row in series} == {
            t["SeriesInstanceUID"] for t in held if t["Modality"] == modality
        }

    one = held[0]
    (row,) = dimse.query(QueryFilter(study_uid=one["StudyInstanceUID"]))
    assert row["PatientName"] == one["PatientName"]  # PersonName as its DICOM string
    assert row["NumberOfStudyRelatedInstances"] == "1"
    assert row["ModalitiesInStudy"] == one["Modality"]
    assert dimse.instances(one["StudyInstanceUID"], one["SeriesInstanceUID"]) == [
        one["SOPInstanceUID"]
    ]
    assert dimse.query(QueryFilter(patient_id="NOBODY")) == []


@pytest.mark.parametrize("via", ["C-GET", "C-MOVE"])
def test_retrieve_is_byte_identical(
    via: str, seeded_orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    dimse = client(seeded_orthanc) if via == "C-GET" else move_client(seeded_orthanc)
    expected = originals(dicom_files["pydicom"])
    held = orthanc_instances(seeded_orthanc)
    assert {t["SOPInstanceUID"] for t in held} == set(expected)
    for tags in held:  # one series per file, each with its own transfer syntax
        sink = Collect()
        n = dimse.retrieve(tags["StudyInstanceUID"], tags["SeriesInstanceUID"], None, sink)
        assert n == 1
        assert sink.got.keys() == {tags["SOPInstanceUID"]}
        # Same transfer syntax and PixelData bytes: nothing was transcoded on the way.
        assert sink.got[tags["SOPInstanceUID"]] == expected[tags["SOPInstanceUID"]]


@pytest.fixture
def ct_series(orthanc: OrthancServer, dicom_files: dict[str, list[Path]]) -> tuple[str, str, list]:
    """Six CT_small copies with new UIDs in one series, uploaded over REST."""
    study, series = generate_uid(), generate_uid()
    sops = []
    for number in range(1, 7):
        ds = pydicom.dcmread(dicom_files["CT_small"][0])
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        orthanc.rest("POST", "/instances", data=buffer.getvalue())
        sops.append(ds.SOPInstanceUID)
    return study, series, sops


@pytest.mark.parametrize("via", ["C-GET", "C-MOVE"])
def test_retrieve_subset_and_whole_series(
    via: str, orthanc: OrthancServer, ct_series: tuple[str, str, list]
) -> None:
    study, series, sops = ct_series
    dimse = client(orthanc) if via == "C-GET" else move_client(orthanc)
    assert sorted(dimse.instances(study, series)) == sorted(sops)
    sink = Collect()
    assert dimse.retrieve(study, series, [sops[4], sops[1], sops[4]], sink) == 2  # deduplicated
    assert sink.got.keys() == {sops[1], sops[4]}
    sink = Collect()
    assert dimse.retrieve(study, series, None, sink) == len(sops)
    assert sink.got.keys() == set(sops)
    assert dimse.retrieve(study, series, [], sink) == 0
    with pytest.raises(PacsError):  # one UID the PACS does not have: never a silent shortfall
        dimse.retrieve(study, series, [sops[0], generate_uid()], Collect())


@pytest.mark.parametrize("via", ["C-GET", "C-MOVE"])
def test_sink_error_surfaces_as_pacs_error(
    via: str, orthanc: OrthancServer, ct_series: tuple[str, str, list]
) -> None:
    study, series, _ = ct_series
    dimse = client(orthanc) if via == "C-GET" else move_client(orthanc)

    def full_disk(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(PacsError, match=f"{via}: could not keep a received instance") as err:
        dimse.retrieve(study, series, None, full_disk)
    assert "No space left on device" in str(err.value)
    assert isinstance(err.value.__cause__, OSError)


def test_move_to_unregistered_destination(
    orthanc: OrthancServer, ct_series: tuple[str, str, list]
) -> None:
    study, series, _ = ct_series
    dimse = client(orthanc, move_port=free_port(), move_aet="NOT_REGISTERED")
    with pytest.raises(PacsError, match="does the PACS know AE 'NOT_REGISTERED'"):
        dimse.retrieve(study, series, None, Collect())


def test_store_reports_unsendable_files(orthanc: OrthancServer, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    report = client(orthanc).store([junk, tmp_path / "missing.dcm"])
    assert report.sent == 0
    assert "not a DICOM Part 10 file" in report.failed[str(junk)]
    assert str(tmp_path / "missing.dcm") in report.failed
    assert orthanc.instance_count() == 0


def test_c_get_over_several_associations(
    orthanc: OrthancServer, ct_series: tuple[str, str, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shares fetched over parallel associations add up to the series, each instance once."""
    import medai_lab.pacs.dimse as dimse_module

    monkeypatch.setattr(dimse_module, "_MIN_SHARE", 2)  # six instances -> three associations
    study, series, sops = ct_series
    shares: list[set[str]] = []  # the SOP UIDs each association asked for
    real_get = DimseClient._get

    def counting_get(self, identifiers, receiver, classes):  # type: ignore[no-untyped-def]
        uids = set()
        for ds in identifiers:
            value = ds.get("SOPInstanceUID", [])
            uids.update([value] if isinstance(value, str) else value)
        shares.append(uids)
        return real_get(self, identifiers, receiver, classes)

    monkeypatch.setattr(DimseClient, "_get", counting_get)
    sink = Collect()
    assert client(orthanc, associations=3).retrieve(study, series, None, sink) == len(sops)
    assert sink.got.keys() == set(sops)
    assert len(shares) == 3 and set().union(*shares) == set(sops)
    assert sum(map(len, shares)) == len(sops)  # disjoint parts
    shares.clear()
    sink = Collect()
    assert client(orthanc, associations=3).retrieve(study, series, sops[:4], sink) == 4
    assert sink.got.keys() == set(sops[:4]) and len(shares) == 2

"""Pulls end to end against a real Orthanc: three protocols agree, resume, crash, de-id, CLI."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medai_lab.cli import main
from medai_lab.pacs import PacsError, QueryFilter, pull
from medai_lab.pacs.auth import Auth
from medai_lab.pacs.dicomweb import DicomWebClient
from medai_lab.pacs.dimse import DimseClient
from medai_lab.pacs.server import free_port

PATIENT = "PULL-TEST-7"


def _seed_series(orthanc, n: int) -> tuple[str, str, dict[str, bytes]]:
    """Upload an ``n``-instance CT series (real CT_small pixels); SOP UID -> PixelData."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientID, ds.PatientName = PATIENT, "Pull^Test"
    ds.StudyInstanceUID = f"2.25.{uuid.uuid4().int}"  # short enough for ".<n>" suffixes
    ds.SeriesInstanceUID = f"2.25.{uuid.uuid4().int}"
    pixels = {}
    for i in range(n):
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        orthanc.rest("POST", "/instances", data=buf.getvalue())
        pixels[ds.SOPInstanceUID] = ds.PixelData
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, pixels


def _pulled(out: Path) -> dict[str, bytes]:
    files = [p for p in out.rglob("*.dcm")]
    return {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p).PixelData for p in files}


def _web(orthanc) -> DicomWebClient:
    return DicomWebClient(orthanc.dicomweb_url, auth=Auth.basic(*orthanc.auth), timeout=10)


def test_wado_cget_and_cmove_pull_the_same_instances(orthanc, tmp_path: Path) -> None:
    study, _, pixels = _seed_series(orthanc, 8)
    move_port = free_port()
    orthanc.add_modality("medai", "MEDAI_MOVE", "127.0.0.1", move_port)
    clients = {
        "wado": _web(orthanc),
        "cget": DimseClient("127.0.0.1", orthanc.dicom_port, orthanc.aet, timeout=10),
        "cmove": DimseClient(
            "127.0.0.1",
            orthanc.dicom_port,
            orthanc.aet,
            timeout=10,
            move_port=move_port,
            move_aet="MEDAI_MOVE",
        ),
    }
    for name, client in clients.items():
        out = tmp_path / name
        report = pull(client, QueryFilter(patient_id=PATIENT), out, progress=False)
        assert (report.series_pulled, report.instances_stored) == (1, 8), name
        assert _pulled(out) == pixels, name  # same SOP instances, identical pixel data
        assert {p.parent.parent.name for p in out.rglob("*.dcm")} == {study}
        # a second pull finds the series complete and touches nothing
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")}
        again = pull(client, QueryFilter(patient_id=PATIENT), out, progress=False)
        assert (again.series_pulled, again.series_skipped) == (0, 1)
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")} == before


def test_orthanc_dies_mid_pull_then_a_second_pull_completes(orthanc, tmp_path: Path) -> None:
    _, _, pixels = _seed_series(orthanc, 30)
    client = DimseClient("127.0.0.1", orthanc.dicom_port, orthanc.aet, timeout=5)
    out = tmp_path / "out"

    def crash(done: int, total: int) -> None:
        if done == 10:
            orthanc.kill()

    with pytest.raises(PacsError) as info:
        pull(client, QueryFilter(patient_id=PATIENT), out, progress=False, on_progress=crash)
    assert "\n" not in str(info.value)
    partial = _pulled(out)  # every file present is complete and readable
    assert 10 <= len(partial) < 30
    assert all(partial[uid] == pixels[uid] for uid in partial)
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]
    orthanc.restart()
    report = pull(client, QueryFilter(patient_id=PATIENT), out, progress=False)
    assert report.instances_stored == 30 - len(partial)  # only what was missing
    assert _pulled(out) == pixels
    assert len(list(out.rglob("*.dcm"))) == 30  # nothing duplicated


def test_deid_pull_writes_no_identifiers(orthanc, tmp_path: Path) -> None:
    _, series, _ = _seed_series(orthanc, 3)
    key = tmp_path / "deid.key"
    out = tmp_path / "out"
    argv = ["pacs", "pull", "--url", orthanc.dicomweb_url, "--user", orthanc.auth[0]]
    argv += ["--patient-id", PATIENT, "--out", str(out), "--deid", "--key-file", str(key)]
    env_password = orthanc.auth[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDAI_PACS_PASSWORD", env_password)
        assert main([*argv, "--no-progress"]) == 0
    files = list(out.rglob("*.dcm"))
    assert len(files) == 3
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for identifier in (PATIENT, "Pull^Test", series):
        assert identifier.encode() not in blob
    assert all(pydicom.dcmread(p).PatientIdentityRemoved == "YES" for p in files)


def test_cli_query_upload_and_basel_empty_uids(orthanc, dicom_files, tmp_path, capsys) -> None:
    conn = ["--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--called-aet", orthanc.aet]
    raw = dicom_files["basel_ct"][0].parent
    assert main(["pacs", "upload", str(raw), *conn]) == 1
    out = capsys.readouterr().out
    assert (
        "sent 0 of 20 DICOM files" in out
        and "empty StudyInstanceUID" in out
        and "medai-lab deid" in out
    )
    assert orthanc.instance_count() == 0
    # the documented fix: de-identify (assigns consistent keyed UIDs), then upload
    assert (
        main(
            ["deid", str(raw), str(tmp_path / "deid"), "--key-file", str(tmp_path / "k"), "--quiet"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["pacs", "upload", str(tmp_path / "deid"), *conn]) == 0
    assert "sent 20 of 20 DICOM files" in capsys.readouterr().out
    assert orthanc.instance_count() == 20
    assert main(["pacs", "query", *conn, "--level", "series", "--modality", "CT", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["NumberOfSeriesRelatedInstances"] == "20" and row["Modality"] == "CT"
    assert main(["pacs", "query", *conn]) == 0
    assert "(1 study" in capsys.readouterr().out


def test_cli_errors_are_one_line(orthanc, tmp_path, capsys) -> None:
    wrong = ["pacs", "echo", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port)]
    assert main([*wrong, "--called-aet", "NOT_THE_PACS", "--timeout", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medai-lab: error:") and "NOT_THE_PACS" in err and "\n" not in err
    secret = tmp_path / "pw"
    secret.write_text("wrong-password\n")
    assert (
        main(
            [
                "pacs",
                "echo",
                "--url",
                orthanc.dicomweb_url,
                "--user",
                "medai",
                "--password-file",
                str(secret),
            ]
        )
        == 2
    )
    assert "chmod 600" in capsys.readouterr().err  # a secret others can read is refused
    secret.chmod(0o600)
    argv = ["pacs", "echo", "--url", orthanc.dicomweb_url, "--user", "medai"]
    assert main([*argv, "--password-file", str(secret)]) == 2
    err = capsys.readouterr().err.strip()
    assert "401" in err and "wrong-password" not in err and "\n" not in err

"""DicomWebClient against a real Orthanc (QIDO-RS, WADO-RS, STOW-RS), credentials, and a tiny
local HTTP(S) server where Orthanc cannot play the part (bearer token, 503s, self-signed TLS)."""

from __future__ import annotations

import http.server
import io
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medai_lab.pacs import RETURN_KEYS, PacsError, QueryFilter
from medai_lab.pacs.auth import Auth, load_auth
from medai_lab.pacs.dicomweb import DicomWebClient, iter_parts, to_part10
from medai_lab.pacs.server import OrthancServer, free_port

Series = tuple[str, str, dict[str, bytes]]  # study UID, series UID, SOP UID -> file bytes
SECRET = "s3cret-test"  # the orthanc fixture's password: must never show up in messages


def client(orthanc: OrthancServer, **kwargs: Any) -> DicomWebClient:
    return DicomWebClient(orthanc.dicomweb_url, auth=Auth.basic(*orthanc.auth), **kwargs)


def rest_find(orthanc: OrthancServer, level: str, query: dict[str, str], key: str) -> set[str]:
    """What Orthanc's own REST API finds (the reference for QIDO-RS answers)."""
    found = orthanc.rest(
        "POST", "/tools/find", json={"Level": level, "Query": query, "Expand": True}
    )
    return {item["MainDicomTags"][key] for item in found}


def make_series(folder: Path, n: int) -> list[Path]:
    """``n`` real CT instances (pydicom's CT_small) in one new series, distinct SOP UIDs."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"{i:03d}.dcm", enforce_file_format=True)
        paths.append(folder / f"{i:03d}.dcm")
    return paths


def uids(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def test_echo_then_no_credentials_and_a_wrong_root(orthanc: OrthancServer) -> None:
    assert 0 < client(orthanc).echo() < 5
    with pytest.raises(PacsError, match=r"authentication failed \(HTTP 401\).*wants credentials"):
        DicomWebClient(orthanc.dicomweb_url).query(QueryFilter())
    wrong = DicomWebClient(orthanc.url + "/dicomweb", auth=Auth.basic(*orthanc.auth))
    with pytest.raises(PacsError, match=r"no DICOMweb service at .*/dicomweb .*e\.g\. /dicom-web"):
        wrong.echo()


def test_wrong_password_is_401_and_never_shows_the_password(
    orthanc: OrthancServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = DicomWebClient(orthanc.dicomweb_url, auth=Auth.basic("medai", "Wr0ng-pa55"))
    with pytest.raises(PacsError, match=r"authentication failed \(HTTP 401\) at 127\.0\.0\.1") as e:
        bad.echo()
    text = f"{e.value} {e.value!r} {bad!r} {caplog.text}"
    assert "Wr0ng-pa55" not in text and SECRET not in text


def test_closed_port_is_refused_within_5_s() -> None:
    t0 = time.monotonic()
    with pytest.raises(PacsError, match=r"connection refused by 127\.0\.0\.1"):
        DicomWebClient(f"http://127.0.0.1:{free_port()}/dicom-web", retries=2).echo()
    assert time.monotonic() - t0 < 5  # refused is final: no retries


def test_unknown_host_and_credentials_in_the_url() -> None:
    t0 = time.monotonic()
    with pytest.raises(PacsError, match=r"unknown host no-such-pacs\.invalid"):
        DicomWebClient("http://no-such-pacs.invalid/dicom-web", timeout=5).echo()
    assert time.monotonic() - t0 < 10
    with pytest.raises(PacsError, match="credentials in the URL are refused") as e:
        DicomWebClient("https://medai:hunter2@pacs.example.org/dicom-web")
    assert "hunter2" not in str(e.value)


def test_store_then_query_like_orthanc_rest(
    orthanc: OrthancServer, dicom_files: dict[str, list[Path]], tmp_path: Path
) -> None:
    files = dicom_files["pydicom"]
    before = {f: f.read_bytes() for f in files}
    junk = tmp_path / "notes.dcm"
    junk.write_bytes(b"not DICOM at all" * 20)
    report = client(orthanc).store([*files, junk, tmp_path / "missing.dcm"])
    assert report.sent == 3 and orthanc.instance_count() == 3
    assert set(report.failed) == {str(junk), str(tmp_path / "missing.dcm")}
    assert "not a DICOM file" in report.failed[str(junk)]
    assert all(f.read_bytes() == data for f, data in before.items())  # only read
    assert client(orthanc).store(files).sent == 3  # a second upload is accepted too

    c = client(orthanc)
    headers = {f.stem: pydicom.dcmread(f, stop_before_pixels=True) for f in files}
    ct = headers["CT_small"]
    (row,) = c.query(QueryFilter(patient_id=ct.PatientID))
    from_file = {k: str(ct.get(k, "")) for k in RETURN_KEYS["STUDY"][:7]}  # PN: Alphabetic
    counts = {"NumberOfStudyRelatedSeries": "1", "NumberOfStudyRelatedInstances": "1"}
    assert row == {**from_file, "ModalitiesInStudy": "CT", **counts}

    mrs = [headers["MR_small"], headers["MR2_J2KR"]]
    mr = {d.StudyInstanceUID for d in mrs}
    mr1, ct1 = {mrs[0].StudyInstanceUID}, {ct.StudyInstanceUID}
    exact, F = str(mrs[0].PatientName), QueryFilter  # a ^ in it: Orthanc 1.10 keeps %5E as is
    dates = "20040801-20041231"
    cases = [  # filter, level, the same query for Orthanc's REST API, expected UIDs
        (F(modality="MR"), "STUDY", {"ModalitiesInStudy": "MR"}, mr),
        (F(modality="MR"), "SERIES", {"Modality": "MR"}, {d.SeriesInstanceUID for d in mrs}),
        (F(date_from="20040801", date_to="20041231"), "STUDY", {"StudyDate": dates}, mr),
        (F(date_to="20040201"), "STUDY", {"StudyDate": "-20040201"}, ct1),
        (F(patient_name="Compressed*MR?"), "STUDY", {"PatientName": "Compressed*MR?"}, mr),
        (F(patient_name=exact), "STUDY", {"PatientName": exact}, mr1),
    ]  # fmt: skip
    for flt, level, rest_query, expected in cases:
        key = "StudyInstanceUID" if level == "STUDY" else "SeriesInstanceUID"
        got = {row[key] for row in c.query(flt, level)}
        assert got == expected == rest_find(orthanc, level.title(), rest_query, key), flt
    assert c.query(QueryFilter(patient_name="Compressed Samples*")) == []
    assert c.query(QueryFilter(patient_id="no-such-patient"), "SERIES") == []

    mr = headers["MR2_J2KR"]
    flt = QueryFilter(study_uid=mr.StudyInstanceUID, series_uid=mr.SeriesInstanceUID)
    (image,) = c.query(flt, "IMAGE")
    assert image["SOPInstanceUID"] == mr.SOPInstanceUID and image["SOPClassUID"] == mr.SOPClassUID
    assert c.instances(mr.StudyInstanceUID, mr.SeriesInstanceUID) == [mr.SOPInstanceUID]
    with pytest.raises(PacsError, match="query level"):
        c.query(QueryFilter(), "PATIENT")


@pytest.fixture
def stow_series(orthanc: OrthancServer, tmp_path: Path) -> Callable[[int], Series]:
    """``make(n)``: Orthanc then holds a new n-instance CT series (sent with STOW-RS)."""

    def make(n: int) -> Series:
        paths = make_series(tmp_path / f"series{n}", n)
        assert client(orthanc).store(paths).sent == n
        study, series, _ = uids(paths[0].read_bytes())
        return study, series, {uids(p.read_bytes())[2]: p.read_bytes() for p in paths}

    return make


def test_retrieve_series_is_complete_and_byte_identical(
    orthanc: OrthancServer, stow_series: Callable[[int], Series]
) -> None:
    study, series, originals = stow_series(100)
    orthanc_sops = rest_find(orthanc, "Instance", {"SeriesInstanceUID": series}, "SOPInstanceUID")
    assert orthanc_sops == set(originals)
    for mode in ("series", "instance"):
        got: dict[str, bytes] = {}
        lock = threading.Lock()

        def sink(data: bytes, got: dict[str, bytes] = got, lock: Any = lock) -> None:
            with lock:  # called from several threads in "instance" mode
                got[uids(data)[2]] = data

        c = client(orthanc, retrieve_mode=mode, workers=4)
        t0 = time.perf_counter()
        assert c.retrieve(study, series, None, sink) == 100
        rate = 100 / (time.perf_counter() - t0)
        assert set(got) == orthanc_sops
        for sop, data in got.items():
            assert data == originals[sop]  # not transcoded, not re-encoded: the stored file
            pixels = (pydicom.dcmread(io.BytesIO(d)).PixelData for d in (data, originals[sop]))
            assert next(pixels) == next(pixels)
        print(f"WADO-RS {mode}: {rate:.0f} instances/s, including the QIDO-RS listing")


def test_retrieve_jpeg2000_keeps_its_transfer_syntax(
    orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    (path,) = dicom_files["MR2_J2KR"]
    assert client(orthanc).store([path]).sent == 1
    study, series, _ = uids(path.read_bytes())
    got: list[bytes] = []
    for mode in ("series", "instance"):
        assert client(orthanc, retrieve_mode=mode).retrieve(study, series, None, got.append) == 1
    assert got == [path.read_bytes()] * 2  # JPEG 2000 Lossless, as stored


def test_retrieve_subset_by_sop_uids(
    orthanc: OrthancServer, stow_series: Callable[[int], Series]
) -> None:
    study, series, originals = stow_series(20)
    wanted = sorted(originals)[10:13]
    got: list[bytes] = []
    c = client(orthanc, retrieve_mode="series")  # a subset always goes instance by instance
    assert c.retrieve(study, series, [*wanted, wanted[0]], got.append) == 3
    assert sorted(uids(d)[2] for d in got) == wanted
    assert c.retrieve(study, series, [], got.append) == 0
    with pytest.raises(PacsError, match=r"not on the PACS \(HTTP 404\)"):
        c.retrieve(study, series, [generate_uid()], got.append)
    with pytest.raises(PacsError, match="not a DICOM UID"):
        c.retrieve(study, "1.2/../../x", None, got.append)


@pytest.mark.parametrize("mode", ["series", "instance"])
def test_a_failing_sink_stops_the_retrieval(
    orthanc: OrthancServer, stow_series: Callable[[int], Series], mode: str
) -> None:
    study, series, _ = stow_series(20)
    calls: list[int] = []

    def sink(data: bytes) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")

    t0 = time.monotonic()
    with pytest.raises(PacsError, match=r"storing a received instance failed: OSError.*space"):
        client(orthanc, retrieve_mode=mode, workers=4).retrieve(study, series, None, sink)
    assert time.monotonic() - t0 < 10
    settled = len(calls)
    time.sleep(0.3)
    assert len(calls) == settled < 20  # nothing is fed to the sink after the error


def test_auth_from_env_and_files_is_masked(orthanc: OrthancServer, tmp_path: Path) -> None:
    env = {"MEDAI_PACS_USER": "medai", "MEDAI_PACS_PASSWORD": SECRET}
    auth = load_auth(env=env)
    assert auth == Auth.basic("medai", SECRET)
    assert SECRET not in repr(auth) and SECRET not in str(auth) and "***" in repr(auth)
    assert DicomWebClient(orthanc.dicomweb_url, auth=auth).echo() > 0

    secret_file = tmp_path / "password"
    secret_file.write_text(f"{SECRET}\nsecond line ignored\n")
    secret_file.chmod(0o600)
    auth = load_auth(user="medai", password_file=secret_file, env={})
    assert DicomWebClient(orthanc.dicomweb_url, auth=auth).echo() > 0
    assert load_auth(env={"MEDAI_PACS_TOKEN": "tok-123"}) == Auth.bearer("tok-123")
    assert load_auth(env={}) is None

    secret_file.chmod(0o644)
    with pytest.raises(PacsError, match=r"readable by group/others.*chmod 600") as e:
        load_auth(user="medai", password_file=secret_file, env={})
    assert SECRET not in str(e.value)
    assert load_auth(user="medai", password_file=secret_file, env={}, strict_permissions=False)
    with pytest.raises(PacsError, match="not both"):
        load_auth(token_file=secret_file, user="medai", env={})
    with pytest.raises(PacsError, match="no password"):
        load_auth(env={"MEDAI_PACS_USER": "medai"})
    with pytest.raises(PacsError, match="keep one"):
        load_auth(env={"MEDAI_PACS_TOKEN": "t", **env})
    empty = tmp_path / "token"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(PacsError, match="is empty"):
        load_auth(token_file=empty, env={})
    with pytest.raises(PacsError, match="cannot read the token file"):
        load_auth(token_file=tmp_path / "absent", env={})


class Script:
    """A local HTTP server answering ``(status, body)`` in turn; records request headers."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers, self.seen = list(answers), []
        script = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                script.seen.append(dict(self.headers))
                status, body = (
                    script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
                )
                if status == 0:  # hang up without an answer, like a reset connection
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/dicom-web"

    def __enter__(self) -> Script:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_bearer_token_is_sent_and_never_shown() -> None:
    with Script([(401, b"")]) as server:
        c = DicomWebClient(server.url, auth=Auth.bearer("tok-SECRET-42"))
        with pytest.raises(PacsError, match=r"HTTP 401") as e:
            c.echo()
    assert server.seen[0]["Authorization"] == "Bearer tok-SECRET-42"
    assert "tok-SECRET-42" not in f"{e.value} {c!r} {c.auth!r} {c.auth.requests_auth()!r}"


def test_retries_only_transient_answers() -> None:
    with Script([(0, b""), (503, b""), (502, b""), (200, b"[]")]) as server:
        assert DicomWebClient(server.url, retries=3, backoff=0.01).echo() > 0
        assert len(server.seen) == 4
    with Script([(503, b"")]) as server:
        with pytest.raises(PacsError, match="HTTP 503"):
            DicomWebClient(server.url, retries=1, backoff=0.01).echo()
        assert len(server.seen) == 2
    with Script([(403, b"")]) as server:
        with pytest.raises(PacsError, match=r"access denied \(HTTP 403\)"):
            DicomWebClient(server.url, retries=3, backoff=0.01).echo()
        assert len(server.seen) == 1  # never a 4xx again
    with (
        Script([(200, b'["not", "DICOM JSON"]')]) as server,
        pytest.raises(PacsError, match="not DICOMweb"),
    ):
        DicomWebClient(server.url).echo()


@pytest.fixture
def tls_server(tmp_path: Path, openssl: str) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server with a self-signed certificate for 127.0.0.1: (url, cert)."""
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with Script([(404, b"")]) as server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
        yield server.url.replace("http://", "https://"), cert


def test_tls_failure_says_how_to_pass_a_ca_bundle(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    with pytest.raises(PacsError, match=r"TLS verification failed .*verify='/path/ca.pem'"):
        DicomWebClient(url).echo()
    with pytest.raises(PacsError, match="no DICOMweb service"):  # TLS passed; our fake has no QIDO
        DicomWebClient(url, verify=str(cert)).echo()
    with pytest.raises(PacsError, match="CA bundle not found"):
        DicomWebClient(url, verify=str(cert) + ".missing")


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_iter_parts_any_chunking(chunk: int) -> None:
    bodies = [b"first\r\n--notyet", b"", bytes(range(256)) * 40]
    head = b"--B0undary\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    parts = b"".join(head + b"\r\n\r\n" + body + b"\r\n" for body in bodies)
    stream = b"preamble\r\n" + parts + b"--B0undary--\r\nepilogue"
    pieces = (stream[i : i + chunk] for i in range(0, len(stream), chunk))
    parts = list(iter_parts(pieces, b"B0undary"))
    assert [body for _, body in parts] == bodies
    assert parts[0][0].get_param("transfer-syntax") == "1.2.840.10008.1.2.1"
    with pytest.raises(PacsError, match="cut short"):
        list(iter_parts([stream[: len(stream) // 2]], b"B0undary"))


def test_to_part10_wraps_a_bare_data_set_without_touching_it() -> None:
    raw = Path(get_testdata_file("MR2_J2KR.dcm")).read_bytes()
    assert to_part10(raw) is raw
    original = pydicom.dcmread(io.BytesIO(raw))
    meta_end = 132 + 12 + original.file_meta.FileMetaInformationGroupLength
    bare = raw[meta_end:]
    wrapped = to_part10(bare, "1.2.840.10008.1.2.4.90")
    assert wrapped.endswith(bare) and wrapped[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(wrapped))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert ds.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert ds.PixelData == original.PixelData
    assert to_part10(raw[128:]) == raw  # only the preamble missing
    with pytest.raises(PacsError, match="not a DICOM data set"):
        to_part10(b"\x00" * 10)


def test_debug_logging_never_shows_the_query(
    orthanc: OrthancServer, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs each request line at DEBUG: the patient name in a QIDO query must not."""
    name, pid = "Tracer^Loggable", "LOGPID-4711"
    with caplog.at_level(logging.DEBUG):
        c = client(orthanc)
        assert c.query(QueryFilter(patient_name=name, patient_id=pid)) == []
        assert c.query(QueryFilter(patient_id=pid), "SERIES") == []
    request_lines = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/studies?<redacted>" in r.getMessage() for r in request_lines)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Tracer" not in text and "Loggable" not in text and pid not in text

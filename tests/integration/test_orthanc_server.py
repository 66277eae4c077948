"""The workshop PACS launcher against the real Orthanc 1.10 (Debian packages)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import requests

from medai_lab.pacs import PacsError
from medai_lab.pacs.server import OrthancServer, free_port

VERIFICATION = "1.2.840.10008.1.1"


def orthanc_pids(config_file: Path) -> list[int]:
    """Processes whose command line names this server's configuration file."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(config_file) in (entry / "cmdline").read_text():
                pids.append(int(entry.name))
        except OSError:
            continue  # the process ended meanwhile
    return pids


def port_is_free(port: int) -> bool:
    """Nobody listens on ``port`` (SO_REUSEADDR: TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # Orthanc 1.10 listens on every interface
        except OSError:
            return False
    return True


def echo(port: int, called_aet: str):
    """A C-ECHO association from pynetdicom; returns (association, status or None)."""
    from pynetdicom import AE

    ae = AE(ae_title="MEDAI_TEST")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_aet)
    status = assoc.send_c_echo() if assoc.is_established else None
    if assoc.is_established:
        assoc.release()
    return assoc, status


def test_start_stop_leaves_no_process_and_frees_the_ports(
    orthanc_factory: Callable[..., OrthancServer],
) -> None:
    with orthanc_factory(start=False) as server:
        assert server.running and orthanc_pids(server.config_file) == [server.pid]
        assert not port_is_free(server.http_port) and not port_is_free(server.dicom_port)
        assert server.url == f"http://127.0.0.1:{server.http_port}"
        assert server.dicomweb_url == server.url + "/dicom-web"
    assert not server.running
    assert orthanc_pids(server.config_file) == []
    assert port_is_free(server.http_port) and port_is_free(server.dicom_port)
    assert "Orthanc has stopped" in server.log_file.read_text()  # a clean shutdown
    server.stop()  # idempotent


def test_rest_and_dicomweb_require_the_credentials(orthanc: OrthancServer) -> None:
    assert orthanc.auth == ("medai", "s3cret-test")
    for path in ("/system", "/studies", "/dicom-web/studies"):
        assert requests.get(orthanc.url + path, timeout=5).status_code == 401
        wrong = requests.get(orthanc.url + path, auth=("medai", "wrong"), timeout=5)
        assert wrong.status_code == 401
    system = orthanc.rest("GET", "/system")
    assert system["DicomAet"] == "MEDAI_PACS" and system["DicomPort"] == orthanc.dicom_port
    assert system["Version"].startswith("1.")


def test_qido_lists_the_uploaded_studies(
    seeded_orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    expected = sorted(pydicom.dcmread(f).StudyInstanceUID for f in dicom_files["pydicom"])
    assert seeded_orthanc.instance_count() == len(dicom_files["pydicom"])
    assert seeded_orthanc.study_uids() == expected
    answer = requests.get(
        seeded_orthanc.dicomweb_url + "/studies",
        auth=seeded_orthanc.auth,
        headers={"Accept": "application/dicom+json"},
        timeout=10,
    )
    answer.raise_for_status()
    assert sorted(row["0020000D"]["Value"][0] for row in answer.json()) == expected
    ct = pydicom.dcmread(dicom_files["CT_small"][0])
    one = requests.get(
        seeded_orthanc.dicomweb_url + "/studies",
        params={"PatientID": ct.PatientID},
        auth=seeded_orthanc.auth,
        timeout=10,
    ).json()
    assert [row["0020000D"]["Value"][0] for row in one] == [ct.StudyInstanceUID]


def test_c_echo_needs_the_right_called_aet(orthanc: OrthancServer) -> None:
    assoc, status = echo(orthanc.dicom_port, orthanc.aet)
    assert status is not None and status.Status == 0x0000
    assoc, status = echo(orthanc.dicom_port, "NOT_THE_PACS")
    # Orthanc sends A-ASSOCIATE-RJ and closes at once; pynetdicom may see the close first.
    assert status is None and (assoc.is_rejected or assoc.is_aborted), vars(assoc)
    deadline = time.monotonic() + 5
    while "bad called AET in the request (NOT_THE_PACS)" not in orthanc.log_tail():
        assert time.monotonic() < deadline, orthanc.log_tail()
        time.sleep(0.1)


def test_loopback_server_serves_local_aes_and_refuses_unregistered_ones(
    seeded_orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    from pydicom.dataset import Dataset
    from pynetdicom import AE, StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import CTImageStorage
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

    server, ct = seeded_orthanc, pydicom.dcmread(dicom_files["CT_small"][0])
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    handlers = [(evt.EVT_C_STORE, on_store)]
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", ct.StudyInstanceUID

    def connect(calling: str):
        ae = AE(ae_title=calling)
        for context in (FIND, GET, MOVE, CTImageStorage):
            ae.add_requested_context(context)
        role = [build_role(CTImageStorage, scp_role=True)]  # C-GET answers on this association
        return ae.associate(
            "127.0.0.1",
            server.dicom_port,
            ae_title=server.aet,
            ext_neg=role,
            evt_handlers=handlers,
        )

    # Orthanc 1.10 listens on every interface: on loopback only registered local AEs get data.
    stranger = connect("NOT_REGISTERED")
    if stranger.is_established:
        rows = [row for _, row in stranger.send_c_find(query, FIND) if row]
        if stranger.is_established:
            stranger.release()
        assert rows == []
    assert "DICOM authorization rejected  for AET NOT_REGISTERED" in server.log_tail()
    assoc = connect("MEDAI_LAB")
    assert assoc.is_established
    found = [row.StudyInstanceUID for _, row in assoc.send_c_find(query, FIND) if row]
    assert found == [ct.StudyInstanceUID]
    assert [st.Status for st, _ in assoc.send_c_get(query, GET)][-1] == 0x0000
    assert received == [ct.SOPInstanceUID]
    # C-MOVE only to registered destinations; add_modality registers one at run time.
    assert [st.Status for st, _ in assoc.send_c_move(query, "MEDAI_MOVE", MOVE)] == [0xC000]
    scp_ae = AE(ae_title="MEDAI_MOVE")
    scp_ae.supported_contexts = StoragePresentationContexts
    scp = scp_ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    try:
        server.add_modality("mover", "MEDAI_MOVE", "127.0.0.1", scp.server_address[1])
        assert [st.Status for st, _ in assoc.send_c_move(query, "MEDAI_MOVE", MOVE)][-1] == 0
    finally:
        assoc.release()
        scp.shutdown()
    assert received == [ct.SOPInstanceUID] * 2


def test_kill_then_restart_keeps_instances_ports_and_modalities(
    seeded_orthanc: OrthancServer,
) -> None:
    server = seeded_orthanc
    before, ports = server.study_uids(), (server.http_port, server.dicom_port)
    server.add_modality("mover", "MEDAI_MOVE", "127.0.0.1", 11112)
    old_pid = server.pid
    server.kill()
    assert not server.running and orthanc_pids(server.config_file) == []
    server.restart()
    assert server.running and server.pid != old_pid
    assert (server.http_port, server.dicom_port) == ports
    assert server.study_uids() == before and server.instance_count() == 3
    # REST-registered modalities live in memory only; restart() writes them to the config.
    assert "mover" in server.rest("GET", "/modalities")


def test_ports_in_use_fail_fast_with_a_clear_error(
    orthanc: OrthancServer, orthanc_factory: Callable[..., OrthancServer]
) -> None:
    clash = orthanc_factory(start=False, http_port=orthanc.http_port)
    started = time.monotonic()
    with pytest.raises(PacsError, match="HTTP server is privileged or already in use"):
        clash.start(timeout=20)
    assert time.monotonic() - started < 10 and not clash.running
    assert orthanc.instance_count() == 0  # the first server is untouched
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        taken = orthanc_factory(start=False, dicom_port=holder.getsockname()[1])
        with pytest.raises(PacsError, match="DICOM server is privileged or already in use"):
            taken.start(timeout=20)
    assert orthanc_pids(clash.config_file) == [] and orthanc_pids(taken.config_file) == []


def test_non_loopback_host_needs_users(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.20", "pacs.example.org"):
        with pytest.raises(PacsError, match="non-loopback host") as err:
            OrthancServer(tmp_path, host=host)
        assert "\n" not in str(err.value)
    remote = OrthancServer(tmp_path, host="0.0.0.0", users={"a": "b"}).config(None)
    assert remote["RemoteAccessAllowed"] and remote["AuthenticationEnabled"]
    local = OrthancServer(tmp_path, host="localhost").config(None)
    assert not local["RemoteAccessAllowed"] and not local["AuthenticationEnabled"]
    assert local["DicomCheckCalledAet"] and not local["SaveJobs"]


def test_orthanc_refuses_the_basel_series_with_empty_uids(
    orthanc: OrthancServer, dicom_files: dict[str, list[Path]]
) -> None:
    """Pins what Orthanc does with files lacking Study/Series/SOP Instance UIDs (not a fix)."""
    data = dicom_files["basel_ct"][0].read_bytes()
    answer = requests.post(orthanc.url + "/instances", data=data, auth=orthanc.auth, timeout=10)
    assert answer.status_code == 400 and "missing StudyInstanceUID" in answer.text
    # STOW-RS (DICOMweb plugin 1.7) answers 200 yet stores nothing and lists no failure.
    boundary = "medai-boundary"
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    stow = requests.post(
        orthanc.dicomweb_url + "/studies",
        data=body,
        auth=orthanc.auth,
        headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
        timeout=10,
    )
    assert stow.status_code == 200 and "Value" not in stow.json().get("00081199", {})
    assert orthanc.instance_count() == 0


def test_serve_prints_the_addresses_and_stops_cleanly_on_sigterm(
    orthanc_exe: str, tmp_path: Path
) -> None:
    http_port, dicom_port = free_port(), free_port()
    code = (
        "import sys; from medai_lab.pacs.server import serve; "
        f"sys.exit(serve({str(tmp_path)!r}, http_port={http_port}, dicom_port={dicom_port}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when serve() prints its last banner line
            lines.append(line)
            if "Ctrl-C" in line:
                break
        banner = "".join(lines)
        assert f"http://127.0.0.1:{http_port}/dicom-web" in banner
        assert f"port {dicom_port}" in banner and "MEDAI_PACS" in banner
        assert "medai-lab pacs upload" in banner
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, banner + rest
    assert "Orthanc has started" not in banner + rest  # Orthanc's log stays in its file
    assert orthanc_pids(tmp_path / "orthanc.json") == []
    assert "Orthanc has stopped" in (tmp_path / "orthanc.log").read_text()


def test_a_forgotten_server_is_stopped_at_interpreter_exit(
    orthanc_exe: str, tmp_path: Path
) -> None:
    code = (
        "from medai_lab.pacs.server import OrthancServer; "
        f"print(OrthancServer({str(tmp_path)!r}).start().pid)"  # never stopped
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert orthanc_pids(tmp_path / "orthanc.json") == []
    assert "Orthanc has stopped" in (tmp_path / "orthanc.log").read_text()


def test_import_is_light() -> None:
    code = (
        "import sys, medai_lab.pacs.server; "
        "print(sorted(m for m in ('requests', 'pydicom', 'pynetdicom', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"

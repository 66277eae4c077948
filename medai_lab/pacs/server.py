"""A workshop PACS: the real Orthanc (Debian packages) started with a generated configuration.

Orthanc 1.10.1 cannot bind its HTTP or DICOM server to one address (``HttpBindAddresses`` only
arrived in 2025): both listen on every interface. With a loopback ``host`` the REST/DICOMweb API
refuses non-local clients (``RemoteAccessAllowed: false``), but the DICOM port stays reachable
from the network: keep it behind a firewall. A non-loopback ``host`` allows remote HTTP access
and therefore requires ``users`` (HTTP basic authentication).

Importing this module loads only the standard library; ``requests`` is imported on first use.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import weakref
from pathlib import Path
from typing import IO, Any

from medai_lab.pacs.query import PacsError

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")
_ERROR_LINE = re.compile(r"^E\d{4} .*?\] (.*)$", re.MULTILINE)  # Orthanc's glog-style errors


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it; racy, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_orthanc() -> str | None:
    """The Orthanc executable on ``PATH`` or Debian's ``/usr/sbin/Orthanc``; None if absent."""
    exe = shutil.which("Orthanc")
    if exe is None and os.access("/usr/sbin/Orthanc", os.X_OK):
        exe = "/usr/sbin/Orthanc"  # /usr/sbin is not on an ordinary user's PATH
    return exe


def find_dicomweb_plugin() -> str | None:
    """The DICOMweb plugin (Debian package ``orthanc-dicomweb``); None if absent."""
    found = [p for d in PLUGIN_DIRS for p in sorted(Path(d).glob("libOrthancDicomWeb.so*"))]
    return str(found[0]) if found else None


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other host name may be reachable from outside


def _terminate(proc: subprocess.Popen, timeout: float, log: IO[bytes] | None = None) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; close the log. Used as the finalizer."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if log is not None:
        log.close()


# Calling AE titles a loopback server accepts: ours (the CLI default) and the
# defaults of dcmtk's tools, so `getscu`/`findscu` work without -aet on the same machine.
LOCAL_AETS = ("MEDAI_LAB", "GETSCU", "FINDSCU", "MOVESCU", "STORESCU", "ECHOSCU")


class OrthancServer:
    """One Orthanc process with its own storage folder, ports and configuration.

    Parameters
    ----------
    storage_dir : database, ``orthanc.json`` and ``orthanc.log`` go here (created).
    http_port, dicom_port : None picks free ports (kept across restarts).
    aet : Orthanc's own AE title; associations calling another title are refused.
    host : address clients use; not loopback -> remote HTTP access on, ``users`` required.
    users : HTTP basic-auth ``{user: password}``; None -> no authentication.
    modalities : known DICOM nodes (C-MOVE destinations) ``{name: (aet, host, port)}``.
    executable : the Orthanc binary; default :func:`find_orthanc`.
    log_file : Orthanc's log, stdout and stderr (appended); default ``storage_dir/orthanc.log``.
    """

    def __init__(
        self,
        storage_dir: str | os.PathLike,
        *,
        http_port: int | None = None,
        dicom_port: int | None = None,
        aet: str = "MEDAI_PACS",
        host: str = "127.0.0.1",
        users: dict[str, str] | None = None,
        modalities: dict[str, tuple[str, str, int]] | None = None,
        executable: str | None = None,
        log_file: str | os.PathLike | None = None,
    ) -> None:
        if not is_loopback(host) and not users:
            raise PacsError(f"refusing to serve on non-loopback host {host!r} without users")
        if not 0 < len(aet) <= 16:
            raise PacsError(f"AE title {aet!r} must have 1 to 16 characters")
        self.storage_dir = Path(storage_dir).resolve()
        self.host, self.aet, self.executable = host, aet, executable
        self.users = dict(users) if users else None
        self.modalities = dict(modalities or {})
        self.http_port = http_port or free_port()
        # Two free_port() calls may pick the same port: draw until they differ.
        self.dicom_port = dicom_port or next(p for p in iter(free_port, 0) if p != self.http_port)
        self.log_file = Path(log_file) if log_file else self.storage_dir / "orthanc.log"
        self.config_file = self.storage_dir / "orthanc.json"
        self._proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0
        self._finalizer: weakref.finalize | None = None

    @property
    def url(self) -> str:
        """REST base URL (loopback: Orthanc listens on every interface anyway)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + "/dicom-web"

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(user, password)`` of the first registered user, for requests; else None."""
        return next(iter(self.users.items())) if self.users else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the latest Orthanc started (it may have exited since)."""
        return self._proc.pid if self._proc is not None else None

    def config(self, plugin: str | None) -> dict[str, Any]:
        """The configuration written to ``orthanc.json`` (options as in Orthanc 1.10.1)."""
        db = str(self.storage_dir / "db")
        loopback = is_loopback(self.host)
        return {
            "Name": f"medai-{uuid.uuid4().hex[:12]}",  # unique: proves /system is *our* process
            "StorageDirectory": db,
            "IndexDirectory": db,
            "TemporaryDirectory": str(self.storage_dir / "tmp"),
            "StorageCompression": False,
            "Plugins": [plugin] if plugin else [],  # only DICOMweb, not the whole plugin folder
            "ConcurrentJobs": 2,
            "SaveJobs": False,  # a restarted server must not replay old jobs
            "StableAge": 5,
            "HttpPort": self.http_port,
            "HttpTimeout": 10,  # outgoing HTTP (peers, DICOMweb client)
            "WebDavEnabled": False,  # less surface; nobody needs WebDAV here
            "RemoteAccessAllowed": not is_loopback(self.host),
            "AuthenticationEnabled": bool(self.users),  # explicit: the default depends on remote
            "RegisteredUsers": self.users or {},
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,  # a wrong called AE title is refused
            # Orthanc 1.10 listens on every interface. On loopback only AE titles registered
            # at 127.0.0.1 (ours and dcmtk's defaults) may store, query or retrieve, and the
            # peer address is checked: other hosts reach the port but are refused. A room
            # server (non-loopback host) lets any AE in: workshop laptops are not registered.
            "DicomCheckModalityHost": loopback,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": not loopback,
            "DicomAlwaysAllowFind": not loopback,
            "DicomAlwaysAllowGet": not loopback,
            "DicomAlwaysAllowMove": not loopback,  # the destination must still be known
            "UnknownSopClassAccepted": False,  # DCMTK knows every standard storage class
            "DicomModalities": self._modalities(loopback),
            "DicomScpTimeout": 10,  # idle inbound associations are dropped quickly
            "DicomScuTimeout": 5,  # C-MOVE to a dead destination fails fast
            "DicomAssociationCloseDelay": 0,  # release outbound (C-MOVE) associations at once
            "SynchronousCMove": True,  # C-MOVE answers after its sub-operations
            # No DicomWeb "Host": WADO-RS URLs then follow each client's Host header.
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        }

    def _modalities(self, loopback: bool) -> dict[str, Any]:
        nodes: dict[str, Any] = {name: list(node) for name, node in self.modalities.items()}
        if loopback:
            allow = {f"Allow{op}": True for op in ("Echo", "Find", "Get", "Move", "Store")}
            taken = {node[0] for node in self.modalities.values()}
            for aet in (a for a in LOCAL_AETS if a not in taken):  # one entry per AE title
                nodes.setdefault(
                    f"local-{aet.lower()}", {"AET": aet, "Host": "127.0.0.1", "Port": 104, **allow}
                )
            # registered destinations (C-MOVE) may also ask: they are local too
            for name, (aet, host, port) in self.modalities.items():
                nodes[name] = {"AET": aet, "Host": host, "Port": port, **allow}
        return nodes

    def start(self, timeout: float = 30.0) -> OrthancServer:
        """Write the configuration, start Orthanc, wait until REST ``/system`` and DICOM answer.

        Raises PacsError (with the log tail) if Orthanc exits early or is not ready in time.
        """
        if self.running:
            return self
        exe = self.executable or find_orthanc()
        plugin = find_dicomweb_plugin()
        if exe is None or plugin is None:
            raise PacsError("Orthanc not found (Debian packages orthanc, orthanc-dicomweb)")
        (self.storage_dir / "tmp").mkdir(parents=True, exist_ok=True)  # Orthanc makes "db"
        config = self.config(plugin)
        self.config_file.touch(mode=0o600)
        self.config_file.chmod(0o600)  # before writing: it holds the passwords
        self.config_file.write_text(json.dumps(config, indent=2))
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed by stop()/the finalizer
        self._log_start = self._log.tell()
        # Orthanc logs to stderr: both streams go to the log file, never to our terminal. A new
        # session keeps a terminal's Ctrl-C away from Orthanc; we stop it ourselves.
        self._proc = subprocess.Popen(
            [exe, str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.storage_dir,
            start_new_session=True,
            # Debian's Orthanc keeps Nagle's algorithm on unless told: every DIMSE answer then
            # waits ~40 ms for a delayed ACK (C-GET 20 instances/s instead of ~140).
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        # Runs on garbage collection and at interpreter exit: no Orthanc outlives its owner.
        self._finalizer = weakref.finalize(self, _terminate, self._proc, 5.0, self._log)
        try:
            self._wait_ready(config["Name"], time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, name: str, deadline: float) -> None:
        import requests

        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                errors = _ERROR_LINE.findall(self.log_tail(200))
                why = errors[0].strip() if errors else f"exit code {self._proc.returncode}"
                raise PacsError(f"Orthanc failed to start: {why}\n{self.log_tail(8)}")
            with contextlib.suppress(requests.RequestException, ValueError, OSError):
                answer = requests.get(self.url + "/system", auth=self.auth, timeout=1)
                # Another server may hold our port and answer: only our unique Name counts.
                if answer.ok and answer.json().get("Name") == name:
                    with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                        return
            if time.monotonic() > deadline:
                raise PacsError(f"Orthanc not ready in time at {self.url}\n{self.log_tail(8)}")
            time.sleep(0.1)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (Orthanc needs ~4 s to shut down); stop() reaps it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Idempotent."""
        if self._proc is not None:
            _terminate(self._proc, timeout, self._log)
        if self._finalizer is not None:  # after: an interrupted wait leaves it armed
            self._finalizer.detach()
            self._finalizer = None
        self._log = None

    def kill(self) -> None:
        """SIGKILL now, like a crash (no clean database shutdown)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self.stop()

    def restart(self, timeout: float = 30.0) -> OrthancServer:
        """Stop if running, start again on the same ports and storage (stored data persists)."""
        self.stop()
        return self.start(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Orthanc wrote since the latest start."""
        try:
            text = self.log_file.read_bytes()[self._log_start :].decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API and return the decoded JSON (None if empty); PacsError on failure."""
        import requests

        kwargs.setdefault("timeout", 30)
        try:
            answer = requests.request(method, self.url + path, auth=self.auth, **kwargs)
        except requests.RequestException as exc:
            raise PacsError(f"Orthanc REST {method} {path} failed: {exc}") from exc
        if not answer.ok:
            raise PacsError(f"Orthanc REST {method} {path}: HTTP {answer.status_code}")
        return answer.json() if answer.content else None

    def add_modality(self, name: str, aet: str, host: str, port: int) -> None:
        """Register a DICOM node (e.g. a C-MOVE destination) while Orthanc runs."""
        self.rest("PUT", f"/modalities/{name}", json={"AET": aet, "Host": host, "Port": port})
        self.modalities[name] = (aet, host, port)  # kept in the configuration of restarts

    def instance_count(self) -> int:
        """Number of instances Orthanc holds."""
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def study_uids(self) -> list[str]:
        """Study Instance UIDs Orthanc holds, sorted."""
        studies = self.rest("GET", "/studies", params={"expand": ""})
        return sorted(s["MainDicomTags"].get("StudyInstanceUID", "") for s in studies)


def serve(
    storage_dir: str | os.PathLike,
    http_port: int = 8042,
    dicom_port: int = 4242,
    host: str = "127.0.0.1",
    users: dict[str, str] | None = None,
    aet: str = "MEDAI_PACS",
) -> int:
    """Run a workshop PACS in the foreground until Ctrl-C or SIGTERM; 0 after a clean stop."""
    server = OrthancServer(
        storage_dir, http_port=http_port, dicom_port=dicom_port, aet=aet, host=host, users=users
    )

    def _sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # one clean path for Ctrl-C and SIGTERM

    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        server.start()
        shown = "127.0.0.1" if is_loopback(host) else host
        shown = socket.gethostname() if shown in ("0.0.0.0", "::") else shown
        web = f"http://{shown}:{http_port}"
        login = f" --user {next(iter(users))}" if users else ""
        print(f"Orthanc {aet} running; storage {server.storage_dir}, log {server.log_file}")
        print(f"  DICOMweb: {web}/dicom-web   (Orthanc Explorer: {web}/app/explorer.html)")
        print(f"  DICOM:    host {shown}  port {dicom_port}  called AE title {aet}")
        print(f"  upload:   medai-lab pacs upload --url {web}/dicom-web{login} FOLDER")
        print("Ctrl-C stops it.", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"Orthanc stopped unexpectedly:\n{server.log_tail(8)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping Orthanc ...", flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)

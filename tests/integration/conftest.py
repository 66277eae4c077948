"""Fixtures for tests against a real Orthanc PACS (Debian packages orthanc, orthanc-dicomweb).

Every server gets its own storage in tmp_path and free ports. Orthanc needs ~4 s to shut down
(its HTTP and DICOM servers poll for the stop flag), so teardown sends SIGTERM without waiting
and the end of the session reaps them all; a test that needs the process gone calls ``stop()``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testsupport import missing_component  # tests/testsupport.py

from medai_lab.pacs.server import OrthancServer, find_dicomweb_plugin, find_orthanc

USER = ("medai", "s3cret-test")
PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "MR2_J2KR.dcm")  # three studies, two syntaxes


@pytest.fixture(scope="session")
def orthanc_exe() -> str:
    """The Orthanc executable (fails in CI, skips elsewhere when Orthanc or DICOMweb is absent)."""
    exe = find_orthanc()
    if exe is None or find_dicomweb_plugin() is None:
        missing_component("Orthanc (Debian packages orthanc, orthanc-dicomweb)")
    return exe


@pytest.fixture(scope="session")
def openssl() -> str:
    """The openssl executable (self-signed certificates for TLS tests)."""
    exe = shutil.which("openssl")
    if exe is None:
        missing_component("openssl (Debian package openssl)")
    return exe


@pytest.fixture(scope="session")
def _orthanc_reaper() -> Iterator[list[OrthancServer]]:
    """Servers whose teardown only sent SIGTERM; waited for (bounded) at the end of the session."""
    servers: list[OrthancServer] = []
    yield servers
    for server in servers:
        server.stop(timeout=15)


@pytest.fixture
def orthanc_factory(
    orthanc_exe: str, tmp_path: Path, _orthanc_reaper: list[OrthancServer]
) -> Iterator[Callable[..., OrthancServer]]:
    """``make(start=True, **kwargs)``: an OrthancServer in its own folder under tmp_path.

    Defaults: basic-auth user ``medai`` / ``s3cret-test`` (``users=None`` turns auth off) and
    free ports. All servers are stopped at teardown.
    """
    made: list[OrthancServer] = []

    def make(start: bool = True, **kwargs) -> OrthancServer:
        kwargs.setdefault("users", dict([USER]))
        kwargs.setdefault("executable", orthanc_exe)
        storage = kwargs.pop("storage_dir", tmp_path / f"orthanc{len(made)}")
        server = OrthancServer(storage, **kwargs)
        made.append(server)
        return server.start() if start else server

    yield make
    for server in made:
        server.terminate()  # all shut down in parallel with the next tests
    _orthanc_reaper.extend(made)


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., OrthancServer]) -> OrthancServer:
    """A started, empty Orthanc with basic auth (``orthanc.auth == ("medai", "s3cret-test")``)."""
    return orthanc_factory()


@pytest.fixture(scope="session")
def dicom_files(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> dict[str, list[Path]]:
    """Real DICOM files (copies) to upload: name -> paths.

    ``basel_ct``: the 20-slice JPEG 2000 CT from shared data (EMPTY Study/Series/SOP Instance
    UIDs and SOP Class UID: Orthanc refuses it as is);
    ``CT_small``, ``MR_small``, ``MR2_J2KR``: pydicom's test files, one study each, and
    ``pydicom``: those three together.
    """
    from pydicom.data import get_testdata_file

    root = tmp_path_factory.mktemp("dicom-files")
    files: dict[str, list[Path]] = {}
    for name in PYDICOM_FILES:
        source = get_testdata_file(name)
        if source is None:
            missing_component(f"pydicom test file {name}")
        (root / "pydicom").mkdir(exist_ok=True)
        files[Path(name).stem] = [Path(shutil.copy(source, root / "pydicom" / name))]
    files["pydicom"] = [f for name in PYDICOM_FILES for f in files[Path(name).stem]]
    shutil.copytree(shared_data / "ct_series_basel" / "dicom", root / "basel_ct")
    files["basel_ct"] = sorted((root / "basel_ct").iterdir())
    return files


@pytest.fixture
def seeded_orthanc(orthanc: OrthancServer, dicom_files: dict[str, list[Path]]) -> OrthancServer:
    """``orthanc`` holding the pydicom files (uploaded with REST ``POST /instances``)."""
    for path in dicom_files["pydicom"]:
        orthanc.rest("POST", "/instances", data=path.read_bytes())
    return orthanc

"""Folder scans in worker processes (large folders) find exactly what a serial scan finds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from medai_lab.io import discovery
from medai_lab.io.discovery import discover_series


def _summary(report: discovery.DiscoveryReport) -> tuple:
    return (
        [(s.uid, [h.path.name for h in s.headers]) for s in report.series],
        sorted((p.name, why) for p, why in report.skipped),
        sorted((p.name, why) for p, why in report.corrupt),
        [(o.path.name, o.kind, o.names) for o in report.labels],
    )


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real images of three series, an RTSTRUCT, a damaged copy and a file that is not DICOM."""
    root = tmp_path_factory.mktemp("mixed")
    for i, name in enumerate(["CT_small.dcm", "MR_small.dcm", "rtstruct.dcm", "MR2_UNCR.dcm"]):
        shutil.copy(get_testdata_file(name), root / f"f{i}.dcm")
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (root / "cut.dcm").write_bytes(data[: len(data) - 5000])  # pixel data ends early
    (root / "notes.txt").write_text("not an image\n")
    return root


def test_process_scan_equals_serial_scan(mixed, monkeypatch):
    serial = discover_series(mixed, workers=1)
    assert serial.corrupt and len(serial.skipped) == 2 and len(serial.series) == 3
    monkeypatch.setattr(discovery, "_PROCESS_MIN", 2)  # the process path on a small folder
    monkeypatch.setattr(discovery, "_CHUNK", 2)
    parallel = discover_series(mixed, workers=2)
    assert _summary(parallel) == _summary(serial)
    assert [c for _, c in parallel.corrupt] == [c for _, c in serial.corrupt]
    assert parallel.describe() == serial.describe()

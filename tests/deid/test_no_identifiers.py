"""Nothing ``medai-lab deid`` writes or prints names the patient or an input path.

Hospital exports name folders and files after patients. The tree here does too
("DOE^JOHN_JD12345/..."), its headers carry the same name and ID, and one slice carries
them burned into its pixels. After a run, every output path, audit cell, reason file,
printed line (stdout and stderr of the CLI, progress bar included) and quarantine file
name is searched for the patient's name and ID and for every input path component. The
linkage files (mode 0600, outside OUT) are the only place allowed to map back.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
from pixel_images import NAME, PID, slice_bytes
from testsupport import missing_component

from medai_lab.cli import main
from medai_lab.deid.pixelstep import require_engine
from medai_lab.errors import MedaiError

TOP = f"{NAME}_{PID}"  # DOE^JOHN_JD12345
# every component is distinctive: finding one anywhere in OUT or the output is a leak
TREE = {
    f"{TOP}/CT_DOE_JOHN_20240102/IM_DOE_JOHN_0001.dcm": {"seed": 1},
    f"{TOP}/CT_DOE_JOHN_20240102/IM_DOE_JOHN_0002.dcm": {"seed": 2},
    f"{TOP}/CT_DOE_JOHN_20240102/IM_DOE_JOHN_0003.dcm": {"seed": 3},
    f"{TOP}/CT_DOE_JOHN_20240102/IM_DOE_JOHN_copy.dcm": {"seed": 1},  # a duplicate
    f"{TOP}/US_JOHN_DOE_ECHO/US_JOHN_DOE_01.dcm": {"modality": "US", "size": 256},
    f"{TOP}/SC_DOE_JOHN_CAPTURE/SC_DOE_JOHN_TEXT.dcm": {"seed": 9, "text": "DOE JOHN JD12345"},
    f"{TOP}/DOE_JOHN_notes.txt": None,  # not DICOM
}
# (not the bare "12345": the digits of random UIDs hold it now and then)
NEEDLES = ("DOE", "JOHN", PID, "St John")
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


@pytest.fixture
def patient_tree(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    for rel, spec in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"DOE^JOHN JD12345 referral" if spec is None else slice_bytes(**spec))
    return root


def components(root: Path) -> set[str]:
    """Every folder and file name under ``root`` (the input side)."""
    names = set()
    for rel in TREE:
        names.update(Path(rel).parts)
    assert names and all(len(n) >= 8 for n in names)
    return names


def leaks(text: str, names: set[str]) -> list[str]:
    upper = text.upper()
    found = [n for n in NEEDLES if n.upper() in upper]
    return found + [n for n in names if n.upper() in upper]


@pytest.fixture(autouse=True)
def _bars_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    # progress bars are drawn where they are seen; here they must be, to be searched too
    monkeypatch.setenv("MEDAI_PROGRESS", "1")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["deid", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def check_out(out: Path, printed: str, names: set[str]) -> list[dict[str, str]]:
    """Assert OUT and the printed lines are clean; the audit rows."""
    problems = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        problems += [f"path {rel}: {n}" for n in leaks(rel, names)]
        if path.is_file() and (path.suffix in (".csv", ".txt") or "quarantine" not in rel):
            # quarantine copies are the inputs (documented); everything else must be clean.
            # DICOM outputs up to their pixel data (noise bytes may spell anything; text in
            # the pixels is the OCR's subject, in test_pixel_policy.py)
            raw = path.read_bytes()
            if path.suffix == ".dcm":
                raw = raw[: raw.rfind(PIXEL_DATA_TAG)]
            text = raw.decode("latin-1")
            problems += [f"content of {rel}: {n}" for n in leaks(text, names)]
    problems += [f"printed: {n}" for n in leaks(printed, names)]
    assert not problems, problems
    with open(out / "deid_audit.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def check_linkage(tmp_path: Path, out: Path, rows: list[dict[str, str]]) -> None:
    link = tmp_path / "private" / "inputs.csv"
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o600
    assert out not in link.parents
    with open(link, newline="") as fh:
        path_of = {r["input"]: r["input_path"] for r in csv.DictReader(fh)}
    assert sorted(path_of.values()) == sorted(TREE)
    assert {r["input"] for r in rows} == set(path_of)
    for row in rows:
        if row["status"] == "quarantined":
            name = row["input"]
            assert row["output"] == f"quarantine/{name}.dcm"
            copy = out / row["output"]
            assert copy.read_bytes() == (tmp_path / "export" / path_of[name]).read_bytes()
            reason = (out / "quarantine" / f"{name}.reason.txt").read_text()
            assert reason.strip() == row["reason"]


def test_headers_only_run_names_no_patient_and_no_input_path(
    patient_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, printed = run_cli(
        capsys, str(patient_tree), str(out), "--key-file", str(tmp_path / "k.key"),
        "--pixels", "off", "--input-linkage", str(tmp_path / "private" / "inputs.csv"),
        "--linkage", str(tmp_path / "private" / "patients.csv"),
    )  # fmt: skip
    assert code == 0, printed
    assert "de-identify" in printed, "the progress bar was captured too"
    rows = check_out(out, printed, components(patient_tree))
    status = sorted(r["status"] for r in rows)
    # written: 3 slices and the CT slice with text (off checks no pixels: the documented
    # price of off); quarantined: the duplicate, the ultrasound (by rule) and the text file
    assert status.count("deidentified") == 4 and status.count("quarantined") == 3, rows
    reasons = " | ".join(r["reason"] for r in rows)
    assert "duplicate" in reasons and "burned-in annotation" in reasons and "malformed" in reasons
    check_linkage(tmp_path, out, rows)
    assert stat.S_IMODE(os.stat(tmp_path / "private" / "patients.csv").st_mode) == 0o600


def test_pixel_checked_run_names_no_patient_and_no_input_path(
    patient_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        require_engine("redact")
    except MedaiError as exc:
        missing_component(f"the OCR pixel checker ({exc})")
    out = tmp_path / "out"
    code, printed = run_cli(
        capsys, str(patient_tree), str(out), "--key-file", str(tmp_path / "k.key"),
        "--input-linkage", str(tmp_path / "private" / "inputs.csv"),
    )  # fmt: skip
    assert code == 0, printed
    rows = check_out(out, printed, components(patient_tree))
    by_pixels = {r["pixels"] for r in rows if r["status"] == "deidentified"}
    assert "redacted" in by_pixels, rows  # the text slice went through, without its text
    assert all(r["ocr_engine"] for r in rows if r["pixels"] in ("clean", "redacted"))
    check_linkage(tmp_path, out, rows)


def test_error_lines_name_no_input_path(
    patient_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = components(patient_tree)
    missing = patient_tree / f"{TOP}_MISSING"
    code, printed = run_cli(capsys, str(missing), str(tmp_path / "o"), "--pixels", "off")
    assert code == 2 and "input folder not found" in printed
    assert not leaks(printed, names) and "MISSING" not in printed
    out = tmp_path / "o2"
    inside = str(out / "inputs.csv")
    code, printed = run_cli(
        capsys, str(patient_tree), str(out), "--pixels", "off", "--input-linkage", inside
    )
    assert code == 2 and printed.strip().count("\n") == 0
    assert "linkage file must not be inside the output folder" in printed
    assert not out.exists()

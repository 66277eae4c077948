"""Folder runs: atomic outputs, audit, quarantine, keys, linkage, reruns, CLI and API.

Headers only here (``pixels="off"``); the pixel policies are in test_pixel_policy.py.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medai_lab.deid import (
    Quarantined,
    deidentify_dataset,
    deidentify_file,
    deidentify_tree,
    load_or_create_key,
)
from medai_lab.errors import MedaiError
from medai_lab.io import Volume
from medai_lab.io.dicom_write import write_dicom_series

KEY = b"tree-test-key-0123456789abcdef!!"
NAME, PID = "Testperson^Alice", "TREE-4711"


def _series(folder: Path, seed: str = "a") -> list[Path]:
    arr = np.arange(16 * 16 * 4, dtype=np.int16).reshape(16, 16, 4)
    vol = Volume(arr, np.diag([0.8, 0.8, 2.0, 1.0]))
    return write_dicom_series(vol, folder, patient_id=PID, patient_name=NAME, uid_seed=seed)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    _series(src / "Alice_Testperson" / "ct")
    (src / "notes.txt").write_text("not dicom\n")
    good = sorted((src / "Alice_Testperson" / "ct").iterdir())[0]
    (src / "truncated.dcm").write_bytes(good.read_bytes()[:700])
    shutil.copy(good, src / "copy_of_first.dcm")  # same SOP Instance UID twice
    return src


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _audit(out: Path) -> list[dict[str, str]]:
    return _csv(out / "deid_audit.csv")


def test_every_input_is_accounted_for_once(inputs: Path, tmp_path: Path) -> None:
    before = _digest(inputs)
    out, link = tmp_path / "out", tmp_path / "private" / "inputs.csv"
    report = deidentify_tree(inputs, out, key=KEY, pixels="off", input_linkage=link, progress=False)
    assert _digest(inputs) == before, "inputs must never change"
    rows = _audit(out)
    # the audit names inputs by pseudonym; the private input linkage maps them back
    path_of = {r["input"]: r["input_path"] for r in _csv(link)}
    assert sorted(path_of.values()) == sorted(before)
    assert sorted(r["input"] for r in rows) == sorted(path_of)
    assert all(name.startswith("in-") and len(name) == 19 for name in path_of)
    by_input = {path_of[r["input"]]: r for r in rows}
    assert by_input["notes.txt"]["status"] == "quarantined"
    assert by_input["notes.txt"]["reason"].startswith("malformed: not a DICOM")
    assert by_input["truncated.dcm"]["status"] == "quarantined"
    dup = [r for r in rows if r["reason"].startswith("duplicate")]
    assert len(dup) == 1 and path_of[dup[0]["input"]].endswith(".dcm")
    first = dup[0]["reason"].rsplit(" ", 1)[1]  # the duplicate names the first by pseudonym
    assert first in path_of and by_input[path_of[first]]["status"] == "deidentified"
    assert report.written == 4 and len(report.quarantined) == 3
    assert {name for name, _ in report.quarantined} <= set(path_of)
    for row in rows:
        target = out / row["output"]
        assert target.is_file()
        assert row["pixels"] == "skipped" and row["ocr_engine"] == ""
        if row["status"] == "quarantined":
            assert row["output"] == f"quarantine/{row['input']}.dcm"
            assert target.read_bytes() == (inputs / path_of[row["input"]]).read_bytes()
            reason = (out / "quarantine" / f"{row['input']}.reason.txt").read_text()
            assert reason.strip() == row["reason"] and "\n" not in reason.strip()
        else:
            assert row["output"].count("/") == 2 and row["output"].endswith(".dcm")
    assert (out / "quarantine" / "README.txt").is_file()
    assert not list(out.rglob("*.partial")) and not (out / ".medai-deid-partial").exists()
    audit_text = (out / "deid_audit.csv").read_text()
    assert "Testperson" not in audit_text and PID not in audit_text
    for rel in before:
        for part in Path(rel).parts:
            assert part not in audit_text
    assert all(name in path_of for name in report.describe().split() if name.startswith("in-"))


def test_input_pseudonyms_are_keyed_and_stable(inputs: Path, tmp_path: Path) -> None:
    def names(key: bytes, out: str) -> list[str]:
        link = tmp_path / f"{out}.csv"
        deidentify_tree(
            inputs, tmp_path / out, key=key, pixels="off", input_linkage=link, progress=False
        )
        return sorted((r["input_path"], r["input"]) for r in _csv(link))

    first = names(KEY, "a")
    (inputs / "zz_new.dcm").write_bytes(b"late arrival")  # one more input changes no name
    again = names(KEY, "b")
    assert set(first) < set(again)
    other = names(b"y" * 32, "c")
    assert {n for _, n in first}.isdisjoint(n for _, n in other)


def test_outputs_carry_no_identity_and_group_into_one_series(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    deidentify_tree(inputs, out, key=KEY, pixels="off", progress=False)
    files = [p for p in out.rglob("*.dcm") if "quarantine" not in p.parts]
    assert len(files) == 4
    series = {p.parent for p in files}
    assert len(series) == 1
    for path in files:
        raw = path.read_bytes()
        assert b"Testperson" not in raw and PID.encode() not in raw
        ds = pydicom.dcmread(path)
        assert ds.PatientID.startswith("MEDAI-") and ds.PatientName == ds.PatientID
        assert path.stem == ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID


def test_rerun_is_byte_identical_and_key_dependent(inputs: Path, tmp_path: Path) -> None:
    deidentify_tree(inputs, tmp_path / "a", key=KEY, pixels="off", progress=False)
    deidentify_tree(inputs, tmp_path / "b", key=KEY, pixels="off", progress=False, workers=2)
    deidentify_tree(inputs, tmp_path / "a", key=KEY, pixels="off", progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    deidentify_tree(inputs, tmp_path / "c", key=b"x" * 32, pixels="off", progress=False)
    outputs = {r["output"] for r in _audit(tmp_path / "a") if r["status"] == "deidentified"}
    others = {r["output"] for r in _audit(tmp_path / "c") if r["status"] == "deidentified"}
    assert outputs.isdisjoint(others)


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "project.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path) == key
    path.write_text("zz\n")
    with pytest.raises(MedaiError, match="hex"):
        load_or_create_key(path)


def test_linkage_only_when_asked_and_never_inside_out(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for where in ("linkage_file", "input_linkage"):
        with pytest.raises(MedaiError, match="linkage file must not be inside the output"):
            deidentify_tree(
                inputs, out, key=KEY, pixels="off", progress=False, **{where: out / "l.csv"}
            )
        with pytest.raises(MedaiError, match="linkage file must not be inside the input"):
            deidentify_tree(
                inputs, out, key=KEY, pixels="off", progress=False, **{where: inputs / "l.csv"}
            )
    assert not out.exists(), "refused before any work"
    link, names = tmp_path / "private" / "link.csv", tmp_path / "private" / "inputs.csv"
    deidentify_tree(
        inputs, out, key=KEY, pixels="off", linkage_file=link, input_linkage=names, progress=False
    )
    rows = _csv(link)
    assert len(rows) == 1 and rows[0]["original_patient_id"] == PID
    assert rows[0]["pseudonym"].startswith("MEDAI-")
    assert len(_csv(names)) == 7
    for path in (link, names):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not any("link" in p.name or "inputs" in p.name for p in out.rglob("*"))


def test_refuses_overlapping_folders(inputs: Path, tmp_path: Path) -> None:
    with pytest.raises(MedaiError, match="inside"):
        deidentify_tree(inputs, inputs / "out", key=KEY, pixels="off", progress=False)
    with pytest.raises(MedaiError, match="not found") as err:
        deidentify_tree(tmp_path / "missing", tmp_path / "o", key=KEY, progress=False)
    assert "missing" not in str(err.value), "messages never echo input paths"
    with pytest.raises(MedaiError, match="pixel policy"):
        deidentify_tree(inputs, tmp_path / "o", key=KEY, pixels="blur", progress=False)
    assert not (tmp_path / "o").exists()


def test_cli_runs_and_reports_bad_input_in_one_line(inputs: Path, tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "medai_lab.cli", "deid"]
    key = tmp_path / "k.key"
    ok = subprocess.run(
        [*exe, str(inputs), str(tmp_path / "o"), "--key-file", str(key), "--quiet",
         "--option", "retain-modified-dates", "--option", "clean-descriptors", "--pixels", "off"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "de-identified 4 of 7 files" in ok.stdout and "quarantined 3" in ok.stdout
    assert key.is_file()
    bad = subprocess.run(
        [*exe, str(tmp_path / "nope"), str(tmp_path / "o2"), "--key-file", str(key)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "input folder not found" in bad.stderr


def test_python_api_on_datasets_and_files(inputs: Path, tmp_path: Path) -> None:
    path = sorted((inputs / "Alice_Testperson" / "ct").iterdir())[0]
    ds = pydicom.dcmread(path)
    out = deidentify_dataset(ds, key=KEY, options=["retain-uids"], pixels="off")
    assert ds.PatientName == NAME, "the input dataset is not modified"
    assert out.PatientName != NAME and out.SOPInstanceUID == ds.SOPInstanceUID
    assert out.PixelData == ds.PixelData
    dst = deidentify_file(path, tmp_path / "one.dcm", key=KEY, pixels="off")
    assert pydicom.dcmread(dst).PatientIdentityRemoved == "YES"
    with pytest.raises(Quarantined, match="malformed"):
        deidentify_file(inputs / "notes.txt", tmp_path / "two.dcm", key=KEY, pixels="off")
    assert not (tmp_path / "two.dcm").exists()

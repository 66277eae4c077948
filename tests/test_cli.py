"""The ``medai-lab`` command on good and bad input: one clear line, exit != 0, inputs untouched."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import axial_volume

from medai_lab.cli import main
from medai_lab.io import load_nifti, write_dicom_series


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and os.access(p, os.R_OK)
    }


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert match in err, err
    return err


@pytest.fixture
def series(tmp_path: Path) -> Path:
    write_dicom_series(axial_volume(shape=(16, 12, 6)), tmp_path / "series")
    return tmp_path / "series"


def test_convert_writes_nifti_and_leaves_input_untouched(series, tmp_path, capsys):
    before = _digest(series)
    assert main(["convert", str(series), str(tmp_path / "out.nii.gz")]) == 0
    assert "wrote" in capsys.readouterr().out
    vol = load_nifti(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(vol.array, axial_volume(shape=(16, 12, 6)).array)
    assert _digest(series) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_convert_refuses_to_overwrite(series, tmp_path, capsys):
    out = tmp_path / "out.nii.gz"
    out.write_text("keep me")
    _fails(["convert", str(series), str(out)], capsys, "output exists")
    assert out.read_text() == "keep me"


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(["convert", str(tmp_path / "empty"), str(tmp_path / "o.nii.gz")], capsys, "empty")
    assert not (tmp_path / "o.nii.gz").exists()


def test_missing_folder(tmp_path, capsys):
    _fails(["convert", str(tmp_path / "nope"), str(tmp_path / "o.nii")], capsys, "no such")


def test_folder_of_non_dicom_files(tmp_path, capsys):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "notes.txt").write_text("not an image")
    (d / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _fails(["convert", str(d), str(tmp_path / "o.nii.gz")], capsys, "not a DICOM file")


def test_truncated_pixel_data(series, tmp_path, capsys):
    victim = sorted(series.iterdir())[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 50])
    before = _digest(series)
    _fails(["convert", str(series), str(tmp_path / "o.nii.gz")], capsys, "damaged")
    assert _digest(series) == before
    assert not (tmp_path / "o.nii.gz").exists()


def test_truncated_header(series, tmp_path, capsys):
    victim = sorted(series.iterdir())[-1]  # the last slice: no gap would reveal it
    data = victim.read_bytes()
    for cut in (300, 700, 1000):  # before, inside and after the image-type elements
        victim.write_bytes(data[:cut])
        _fails(["convert", str(series), str(tmp_path / "o.nii.gz")], capsys, "damaged")


def test_file_without_pixel_data(series, tmp_path, capsys):
    d = tmp_path / "nopix"
    d.mkdir()
    ds = pydicom.dcmread(next(series.iterdir()))
    del ds.PixelData
    ds.save_as(d / "a.dcm")
    _fails(["convert", str(d), str(tmp_path / "o.nii.gz")], capsys, "without pixel data")
    # A DICOM object that is not an image (no image module) is ignored with a note.
    del ds.Rows, ds.Columns
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.save_as(d / "a.dcm")
    _fails(["convert", str(d), str(tmp_path / "o.nii.gz")], capsys, "no pixel data")


def test_two_series_mixed(series, tmp_path, capsys):
    write_dicom_series(axial_volume(shape=(16, 12, 4), seed=1), tmp_path / "other")
    for f in (tmp_path / "other").iterdir():
        shutil.move(f, series / f"b_{f.name}")
    _fails(["convert", str(series), str(tmp_path / "o.nii.gz")], capsys, "2 series")
    assert main(["convert", str(series), str(tmp_path / "o.nii.gz"), "--series", "1"]) == 0


def test_one_slice_only(series, tmp_path, capsys):
    for f in sorted(series.iterdir())[1:]:
        f.unlink()
    _fails(["convert", str(series), str(tmp_path / "o.nii.gz")], capsys, "only one slice")
    ok = ["convert", str(series), str(tmp_path / "o.nii.gz"), "--allow-single-slice"]
    assert main(ok) == 0
    assert load_nifti(tmp_path / "o.nii.gz").shape == (16, 12, 1)


def test_bad_output_name(series, tmp_path, capsys):
    _fails(["convert", str(series), str(tmp_path / "o.png")], capsys, ".nii")


def _unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root without setpriv (util-linux): cannot test permissions")
    # Root ignores file modes; drop the capabilities that let it.
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_unreadable_files(series, tmp_path):
    for f in series.iterdir():
        f.chmod(0)
    try:
        proc = subprocess.run(
            [
                *_unprivileged(),
                sys.executable,
                "-m",
                "medai_lab.cli",
                "convert",
                str(series),
                str(tmp_path / "o.nii.gz"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        for f in series.iterdir():
            f.chmod(0o644)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "permission denied" in proc.stderr


def test_debug_shows_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medai_lab.cli",
            "--debug",
            "convert",
            str(tmp_path / "empty"),
            str(tmp_path / "o.nii"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_console_script_help():
    exe = Path(sys.executable).with_name("medai-lab")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("convert", "phantom", "demo", "info"):
        assert command in proc.stdout


def test_info_lists_series(series, capsys):
    assert main(["info", str(series)]) == 0
    out = capsys.readouterr().out
    assert "1 series" in out and "16x12" in out


def test_import_stays_light():
    code = (
        "import sys, medai_lab, medai_lab.io, medai_lab.cli; "
        "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'itk') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_mixed_sizes_in_one_series_are_reported_not_merged(tmp_path, capsys):
    root = tmp_path / "mixed"
    write_dicom_series(axial_volume(shape=(16, 12, 4)), root / "a", uid_seed="same")
    write_dicom_series(axial_volume(shape=(16, 10, 4)), root / "b", uid_seed="same")
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 series" in out and "16x12" in out and "16x10" in out
    _fails(["convert", str(root), str(tmp_path / "o.nii.gz")], capsys, "2 series")


@pytest.mark.parametrize("argv", [["info"], ["--help"]], ids=["command-output", "help"])
def test_closed_pipe_ends_quietly(series, argv):
    """``medai-lab ... | head`` where head has already gone: no error line, no traceback."""
    exe = Path(sys.executable).with_name("medai-lab")
    args = [*argv, str(series)] if argv == ["info"] else argv
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        proc = subprocess.run(
            [str(exe), *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    # 141 = 128 + SIGPIPE, what a shell reports for a command stopped by it; argparse itself
    # ignores a failed write of --help and exits 0
    assert proc.returncode in (0, 141)

"""The header layout shortcut gives exactly what the full element walk gives, or is not used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from medai_lab.io import fastheader
from medai_lab.io.dicom_write import write_dicom_series
from medai_lab.io.volume import Volume


def _walked(path: Path) -> tuple | None:
    fastheader._LAYOUTS.clear()
    return fastheader.read_fast(path)


def _same(a: tuple | None, b: tuple | None) -> bool:
    if a is None or b is None:
        return a is b
    if a[1:] != b[1:] or a[0].keys() != b[0].keys():
        return False
    return all(
        np.array_equal(v, b[0][k]) if isinstance(v, np.ndarray) else v == b[0][k]
        for k, v in a[0].items()
    )


def _real_files(shared_data: Path) -> list[Path]:
    files = sorted(p for p in (shared_data / "transfer_syntaxes" / "In").rglob("*") if p.is_file())
    files += sorted(p for p in (shared_data / "ct_series_basel").rglob("*") if p.is_file())[:6]
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtstruct.dcm"):
        files.append(Path(get_testdata_file(name)))
    return files


def test_every_real_file_reads_the_same_after_any_other(shared_data: Path) -> None:
    """Prime the shortcut with each file, then read each other file: same as its own walk."""
    files = _real_files(shared_data)
    walked = {f: _walked(f) for f in files}
    assert sum(w is not None for w in walked.values()) >= 8  # the fast path is exercised
    for prime in files:
        for f in files:
            _walked(prime)
            assert _same(fastheader.read_fast(f), walked[f]), (prime.name, f.name)


def test_a_series_with_positions_of_varying_length(tmp_path: Path) -> None:
    """Slices whose position strings differ in length get layouts of their own."""
    rng = np.random.default_rng(3)
    arr = rng.integers(-1000, 2000, size=(16, 12, 9)).astype(np.int16)
    # An odd origin and spacing give position strings of several lengths.
    affine = np.array([[-0.7, 0, 0, 13.1], [0, -0.7, 0, -7.0], [0, 0, 1.3, -0.65], [0, 0, 0, 1]])
    files = write_dicom_series(Volume(arr, affine), tmp_path / "s", uid_seed="layout")
    lengths = {len(pydicom.dcmread(f).ImagePositionPatient[2].original_string) for f in files}
    assert len(lengths) > 1
    walked = [_walked(f) for f in files]
    fastheader._LAYOUTS.clear()
    for f, ref in zip(files, walked, strict=True):
        assert _same(fastheader.read_fast(f), ref)
    assert len(fastheader._LAYOUTS) > 1


def test_an_unwanted_element_of_another_length_does_not_match(tmp_path: Path) -> None:
    """Same wanted values, but an element before them is longer: the walk decides."""
    arr = np.zeros((4, 4, 2), dtype=np.int16)
    files = write_dicom_series(Volume(arr, np.eye(4)), tmp_path / "s", uid_seed="len")
    ds = pydicom.dcmread(files[1])
    ds.PatientName = "Longer^Name^Than^Before"
    ds.save_as(files[1])
    _walked(files[0])
    layout = fastheader._LAYOUTS[0]
    head = files[1].read_bytes()[:16384]
    assert not layout.matches(head)
    assert _same(fastheader.read_fast(files[1]), _walked(files[1]))


def test_the_transfer_syntax_is_part_of_the_layout(tmp_path: Path) -> None:
    """Explicit VR little and big endian have UIDs of one length: the UID itself must match."""
    arr = np.zeros((4, 4, 1), dtype=np.int16)
    (little,) = write_dicom_series(Volume(arr, np.eye(4)), tmp_path / "s", uid_seed="ts")
    data = little.read_bytes()
    assert data.count(b"1.2.840.10008.1.2.1\x00") == 1
    other = tmp_path / "big.dcm"
    other.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.2\x00"))
    _walked(little)
    assert fastheader.read_fast(other) is None  # big endian: the fast reader declines it


def test_every_byte_the_layout_ignores_is_a_value_byte(tmp_path: Path) -> None:
    """Flip each header byte: where the layout still matches, a full walk finds the same
    elements at the same offsets (so only a value changed), or the file is not read fast."""
    arr = np.zeros((8, 8, 1), dtype=np.int16)
    (path,) = write_dicom_series(Volume(arr, np.eye(4)), tmp_path / "s", uid_seed="flip")
    buf = path.read_bytes()
    fastheader._LAYOUTS.clear()
    fastheader._walk(buf, None)  # type: ignore[arg-type]
    layout = fastheader._LAYOUTS[0]
    checked = ignored = 0
    for i in range(128, layout.end):
        flipped = bytearray(buf)
        flipped[i] ^= 0x5A
        if not layout.matches(bytes(flipped)):
            checked += 1
            continue
        ignored += 1
        fastheader._LAYOUTS.clear()
        try:
            fastheader._walk(bytes(flipped), None)  # type: ignore[arg-type]
        except (ValueError, UnicodeDecodeError):
            continue  # a value that no longer decodes: both paths decode it the same way
        assert fastheader._LAYOUTS[0].result[1:] == layout.result[1:], i
        assert [w[::2] + w[3:] for w in fastheader._LAYOUTS[0].result[0]] == [
            w[::2] + w[3:] for w in layout.result[0]
        ], i
    assert checked > 100 and ignored > 100

"""Rescale while reading: exact values and the narrowest dtype, as pydicom's modality LUT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from medai_lab.io import load_series
from medai_lab.io.dicom_write import write_dicom_series
from medai_lab.io.volume import Volume


def _series(tmp_path: Path, values: np.ndarray, edit: dict[str, object] | None = None) -> Path:
    """A series written with intercept 0 (stored = values), then edited file by file."""
    folder = tmp_path / "s"
    files = write_dicom_series(
        Volume(values, np.eye(4)), folder, rescale_intercept=0.0, uid_seed="rescale"
    )
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        for key, value in (edit or {}).items():
            setattr(ds, key, value[k] if isinstance(value, list) else value)
        ds.save_as(path)
    return folder


def _reference(folder: Path) -> np.ndarray:
    """pydicom's modality LUT of each file, stacked as (i, j, k)."""
    datasets = sorted(
        (pydicom.dcmread(p) for p in folder.iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    return np.stack([apply_modality_lut(ds.pixel_array, ds).T for ds in datasets], axis=-1)


@pytest.mark.parametrize("workers", [1, 2])
def test_ct_in_hu_stays_int16(tmp_path: Path, workers: int) -> None:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4000, size=(24, 20, 12)).astype(np.int16)
    folder = _series(tmp_path, stored, {"RescaleIntercept": "-1024"})
    vol = load_series(folder, workers=workers)
    assert vol.array.dtype == np.int16
    assert np.array_equal(vol.array, _reference(folder))


@pytest.mark.parametrize("workers", [1, 2])
def test_frames_that_would_overflow_widen_the_whole_volume(tmp_path: Path, workers: int) -> None:
    """One slice near the int16 limit: shifted slices are undone and all become int32."""
    stored = np.full((24, 20, 12), 100, dtype=np.int16)
    stored[:, :, 7] = 32000
    folder = _series(tmp_path, stored, {"RescaleIntercept": "1000"})
    vol = load_series(folder, workers=workers)
    assert vol.array.dtype == np.int32
    ref = _reference(folder)
    assert np.array_equal(vol.array, ref) and ref.max() == 33000


def test_unsigned_stored_with_a_negative_intercept(tmp_path: Path) -> None:
    """uint16 stored, intercept -1024 and no value below 1024: exact, and still uint16."""
    rng = np.random.default_rng(1)
    stored = rng.integers(1024, 30000, size=(16, 16, 6)).astype(np.int16)
    folder = _series(tmp_path, stored, {"PixelRepresentation": 0, "RescaleIntercept": "-1024"})
    vol = load_series(folder, workers=2)
    assert vol.array.dtype == np.uint16
    assert np.array_equal(vol.array, _reference(folder))


def test_unsigned_values_that_go_negative_become_signed(tmp_path: Path) -> None:
    stored = np.full((16, 16, 6), 50000 - 65536, dtype=np.int16)  # 50000 as uint16
    stored[:, :, 2] = 10
    folder = _series(tmp_path, stored, {"PixelRepresentation": 0, "RescaleIntercept": "-1024"})
    vol = load_series(folder, workers=2)
    assert vol.array.dtype == np.int32
    assert np.array_equal(vol.array, _reference(folder))


def test_per_slice_intercepts_and_slopes(tmp_path: Path) -> None:
    stored = np.arange(16 * 16 * 6, dtype=np.int16).reshape(16, 16, 6)
    inters = [str(-1000 - 7 * k) for k in range(6)]
    folder = _series(tmp_path, stored, {"RescaleIntercept": inters})
    vol = load_series(folder, workers=2)
    assert vol.array.dtype == np.int16
    assert np.array_equal(vol.array, _reference(folder))
    folder2 = _series(tmp_path / "b", stored, {"RescaleSlope": "0.5", "RescaleIntercept": inters})
    vol2 = load_series(folder2, workers=2)
    assert vol2.array.dtype == np.float32
    assert np.allclose(vol2.array, _reference(folder2), atol=1e-3)


def test_bits_stored_masks_high_bits_before_the_shift(tmp_path: Path) -> None:
    """12 bits stored, noise in the high bits: masked and sign-extended, then shifted."""
    rng = np.random.default_rng(2)
    low = rng.integers(-2048, 2048, size=(16, 16, 4))
    stored = ((low & 0x0FFF) | 0x5000).astype(np.uint16).view(np.int16)
    folder = _series(
        tmp_path, stored, {"BitsStored": 12, "HighBit": 11, "RescaleIntercept": "-1024"}
    )
    vol = load_series(folder, workers=2)
    assert vol.array.dtype == np.int16
    assert np.array_equal(vol.array, low - 1024)

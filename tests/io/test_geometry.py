"""Series in any plane, order and rescale load to exactly the volume that was written,
and to the same volume dcm2niix makes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import axial_volume, reoriented, rotated
from testsupport import canonical

from medai_lab.errors import SeriesGeometryError
from medai_lab.io import load_series, write_dicom_series

CASES = {
    "axial": "LPS",
    "axial-feet-first": "LPI",
    "sagittal": "PIL",
    "sagittal-reversed": "AIR",
    "coronal": "LIA",
    "coronal-reversed": "RIP",
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_plane_order_and_rescale_round_trip(name, slope, tmp_path, run_dcm2niix):
    vol = reoriented(axial_volume(half_steps=slope == 0.5), CASES[name])
    files = write_dicom_series(
        vol,
        tmp_path / "s",
        rescale_slope=slope,
        rescale_intercept=-1024.0,
        reverse_instance_numbers=name.endswith("reversed"),
    )
    # Shuffled file names: order must come from positions, not names or instance numbers.
    for n, f in enumerate(sorted(files, key=lambda p: hash(p.name) % 97)):
        f.rename(f.with_name(f"x{n:03d}_{f.name}"))
    loaded = load_series(tmp_path / "s")
    # Rows and columns keep their stored directions; slices are ordered along the normal.
    assert loaded.orientation[:2] == CASES[name][:2]
    img, aff = canonical(loaded)
    want, want_aff = canonical(vol)
    np.testing.assert_array_equal(img, want)
    np.testing.assert_allclose(aff, want_aff, atol=1e-4)
    ref = run_dcm2niix(tmp_path / "s")
    np.testing.assert_array_equal(img.astype(np.float64), ref.get_fdata())
    np.testing.assert_allclose(aff, ref.affine, atol=1e-3)


def test_oblique_series_keeps_its_rotation(tmp_path, run_dcm2niix):
    vol = rotated(axial_volume(), 17.0, axis=0)
    write_dicom_series(vol, tmp_path / "s")
    loaded = load_series(tmp_path / "s")
    np.testing.assert_array_equal(loaded.array, vol.array)
    np.testing.assert_allclose(loaded.affine, vol.affine, atol=1e-4)
    ref = run_dcm2niix(tmp_path / "s")
    img, aff = canonical(loaded)
    np.testing.assert_array_equal(img, ref.get_fdata())
    np.testing.assert_allclose(aff, ref.affine, atol=1e-3)


def test_missing_slice_is_an_error_unless_gaps_are_allowed(tmp_path):
    vol = axial_volume(shape=(8, 6, 6))
    files = write_dicom_series(vol, tmp_path / "s")
    files[3].unlink()
    with pytest.raises(SeriesGeometryError, match="1 slice\\(s\\) missing"):
        load_series(tmp_path / "s")
    filled = load_series(tmp_path / "s", allow_gaps=True)
    assert filled.shape == vol.shape
    assert filled.meta["missing_slices"] == [3]
    np.testing.assert_array_equal(filled.array[:, :, 3], -1024)  # blank = intercept (air)
    np.testing.assert_array_equal(filled.array[:, :, 4], vol.array[:, :, 4])
    np.testing.assert_allclose(filled.affine, vol.affine, atol=1e-4)


def test_duplicate_positions_are_refused(tmp_path):
    import pydicom

    vol = axial_volume(shape=(8, 6, 4))
    files = write_dicom_series(vol, tmp_path / "s")
    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.ImagePositionPatient = pydicom.dcmread(files[1]).ImagePositionPatient
    ds.save_as(tmp_path / "s" / "dup.dcm")
    files[2].unlink()
    with pytest.raises(SeriesGeometryError, match="share a position"):
        load_series(tmp_path / "s")


def test_irregular_spacing_is_refused(tmp_path):
    import pydicom

    vol = axial_volume(shape=(8, 6, 5))
    files = write_dicom_series(vol, tmp_path / "s")
    ds = pydicom.dcmread(files[2])
    ipp = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [ipp[0], ipp[1], ipp[2] + 0.9]
    ds.save_as(files[2])
    with pytest.raises(SeriesGeometryError, match="irregular slice spacing"):
        load_series(tmp_path / "s")


def test_deflated_and_implicit_syntaxes_load_identically(tmp_path):
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    vol = axial_volume(shape=(10, 8, 4))
    files = write_dicom_series(vol, tmp_path / "deflate")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(f, enforce_file_format=True)
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    write_dicom_series(vol, tmp_path / "implicit", implicit_vr=True)
    for name in ("deflate", "implicit"):
        loaded = load_series(tmp_path / name)
        np.testing.assert_array_equal(loaded.array, vol.array)
        np.testing.assert_allclose(loaded.affine, vol.affine, atol=1e-4)

"""The fast header reader agrees with the full pydicom parse, and declines what it can't do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import axial_volume, reoriented

from medai_lab.io import write_dicom_series
from medai_lab.io.headers import _from_fast, read_header_pydicom


def _same(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "frames":
            assert len(x) == len(y)
            for fx, fy in zip(x, y, strict=True):
                np.testing.assert_array_equal(fx.ipp, fy.ipp)
                np.testing.assert_array_equal(fx.iop, fy.iop)
                assert (fx.spacing, fx.slope, fx.intercept) == (fy.spacing, fy.slope, fy.intercept)
        else:
            assert x == y, f.name


@pytest.mark.parametrize("implicit", [False, True])
def test_fast_reader_matches_pydicom_on_written_series(tmp_path, implicit):
    vol = reoriented(axial_volume(shape=(8, 6, 3)), "PIL")
    files = write_dicom_series(
        vol, tmp_path / "s", implicit_vr=implicit, rescale_slope=0.5, rescale_intercept=-1000
    )
    for f in files:
        fast = _from_fast(f)
        assert fast is not None and fast.raw_readable
        _same(fast, read_header_pydicom(f))


def test_fast_reader_matches_pydicom_on_real_jpeg2000_ct(shared_data):
    files = sorted((shared_data / "ct_series_basel" / "dicom").iterdir())
    for f in files[:5]:
        fast = _from_fast(f)
        assert fast is not None and fast.pixel_offset is None  # encapsulated: decoder path
        _same(fast, read_header_pydicom(f))


def test_fast_reader_declines_mosaic_big_endian_and_enhanced(shared_data):
    from pydicom.data import get_testdata_file

    ts = shared_data / "transfer_syntaxes" / "In"
    assert _from_fast(ts / "1.dcm") is None  # Siemens mosaic
    assert _from_fast(ts / "3.dcm") is None  # big endian
    assert _from_fast(get_testdata_file("eCT_Supplemental.dcm")) is None  # enhanced CT

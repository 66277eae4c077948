"""Philips MR scaling (private scale slope vs RescaleSlope) against dcm2niix's -p y / -p n.

The series is built from pydicom's real Philips MR slice (MR2_UNCR: RescaleSlope and
RescaleIntercept as the scanner wrote them) with the private scale slope Philips writes in
(2005,xx0E) of the "Philips MR Imaging DD 001" block.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from series4d_helpers import build_series, run_dcm2niix_all, sidecar

from medai_lab.errors import DicomError
from medai_lab.io import convert_dicom_to_nifti, load_series

SCALE = ("Philips MR Imaging DD 001", 0x2005, 0x0E, "FL")


@pytest.fixture(scope="module")
def philips(tmp_path_factory):
    root = tmp_path_factory.mktemp("philips")
    return build_series(
        get_testdata_file("MR2_UNCR.dcm"), root / "p", [{SCALE: 0.0176}], crop=48, seed="ph"
    )


@pytest.mark.parametrize(("mode", "flag"), [("float", "y"), ("display", "n")])
def test_philips_scaling_matches_dcm2niix(mode, flag, philips, dcm2niix, tmp_path):
    (ref_nii,) = run_dcm2niix_all(dcm2niix, philips, tmp_path / "ref", "-p", flag)
    out = tmp_path / "ours.nii"
    convert_dicom_to_nifti(philips, out, philips_scaling=mode)
    ours = nib.as_closest_canonical(nib.load(out)).get_fdata()
    ref = nib.as_closest_canonical(nib.load(ref_nii)).get_fdata()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    side = json.loads((tmp_path / "ours.json").read_text())
    assert side["UsePhilipsFloatNotDisplayScaling"] == (mode == "float")
    ref_side = sidecar(ref_nii)
    assert side["PhilipsScaleSlope"] == pytest.approx(ref_side["PhilipsScaleSlope"], rel=1e-5)
    assert side["PhilipsRescaleSlope"] == pytest.approx(ref_side["PhilipsRescaleSlope"], rel=1e-5)


def test_the_two_philips_scalings_differ(philips):
    """Guards the comparison above: with these headers float and display are far apart."""
    flt = load_series(philips).array
    disp = load_series(philips, philips_scaling="display").array
    assert np.ptp(disp) > 0 and not np.allclose(flt, disp, rtol=0.1)
    with pytest.raises(DicomError, match="philips scaling"):
        load_series(philips, philips_scaling="raw")

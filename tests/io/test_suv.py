"""PET SUV: against a hand computation from the DICOM attributes, on dcm2niix's Bq/ml voxels.

The PET series is built from a real slice (pydicom's CT_small: header, pixels, geometry) with
the PET attributes a scanner writes: Units, DecayCorrection, the radiopharmaceutical
information and per-slice rescale slopes.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from series4d_helpers import build_series, run_dcm2niix_all

from medai_lab.errors import DicomError
from medai_lab.io import convert_dicom_to_nifti


def _pet(tmp_path, **drop):
    info = Dataset()
    info.RadionuclideTotalDose = "370000000"
    info.RadionuclideHalfLife = "6586.2"  # F-18
    info.RadiopharmaceuticalStartTime = "093000.00"
    common = {
        "Modality": "PT",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.128",
        "Units": "BQML",
        "DecayCorrection": "START",
        "SeriesTime": "101512.50",
        "RescaleSlope": "0.731",
        "RescaleIntercept": "0",
        "PatientWeight": "72.5",  # CT_small has none
        "PatientSize": "1.78",
        "PatientSex": "M",
        "RadiopharmaceuticalInformationSequence": Sequence([info]),
    }
    for key in drop:
        common.pop(key, None)
    return build_series(get_testdata_file("CT_small.dcm"), tmp_path / "pet", [common], seed="pet")


def _hand_factor(path, method: str) -> float:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ri = ds.RadiopharmaceuticalInformationSequence[0]

    def sec(tm: str) -> float:
        return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])

    elapsed = sec(ds.SeriesTime) - sec(ri.RadiopharmaceuticalStartTime)
    dose = float(ri.RadionuclideTotalDose) * np.exp(
        -np.log(2) * elapsed / float(ri.RadionuclideHalfLife)
    )
    w, h = float(ds.PatientWeight), float(ds.PatientSize) * 100
    size = {
        "bw": w * 1000,
        "lbm": (1.10 * w - 128 * (w / h) ** 2) * 1000,  # James, male
        "bsa": 0.007184 * w**0.425 * h**0.725 * 1e4,  # Du Bois, cm2
    }[method]
    return size / dose


@pytest.mark.parametrize("method", ["bw", "lbm", "bsa"])
def test_suv_matches_hand_computation(method, dcm2niix, tmp_path):
    src = _pet(tmp_path)
    (ref_nii,) = run_dcm2niix_all(dcm2niix, src, tmp_path / "ref")
    out = tmp_path / "suv.nii"
    vol = convert_dicom_to_nifti(src, out, suv=method)
    factor = _hand_factor(next(src.iterdir()), method)
    ours = nib.as_closest_canonical(nib.load(out)).get_fdata()
    bqml = nib.as_closest_canonical(nib.load(ref_nii)).get_fdata()
    assert np.ptp(bqml) > 0
    np.testing.assert_allclose(ours, bqml * factor, rtol=1e-5, atol=1e-6)
    side = json.loads((tmp_path / "suv.json").read_text())
    assert side["Units"] == vol.meta["units"] == ("cm2/ml" if method == "bsa" else "g/ml")
    assert side["SUV"]["type"] == method
    assert "PatientWeight" not in json.dumps(side) and "weight" not in json.dumps(side).lower()


@pytest.mark.parametrize(
    ("drop", "word"),
    [("RadiopharmaceuticalInformationSequence", "RadionuclideTotalDose"), ("Units", "Units")],
)
def test_suv_refused_with_one_line_when_attributes_are_missing(drop, word, tmp_path):
    src = _pet(tmp_path, **{drop: True})
    out = tmp_path / "x.nii"
    with pytest.raises(DicomError, match=word) as err:
        convert_dicom_to_nifti(src, out, suv="bw")
    assert "\n" not in str(err.value) and not out.exists()


def test_suv_on_non_pet_is_refused(shared_data, tmp_path):
    with pytest.raises(DicomError, match="PET"):
        convert_dicom_to_nifti(
            shared_data / "ct_series_basel" / "dicom", tmp_path / "x.nii", suv="bw"
        )

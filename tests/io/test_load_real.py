"""Real DICOM from ../shared/data and pydicom's test files against the dcm2niix reference."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from testsupport import canonical

from medai_lab.io import discover_series, load_nifti, load_series, save_nifti


def test_real_ct_series_matches_dcm2niix(shared_data, run_dcm2niix, tmp_path):
    dicom = shared_data / "ct_series_basel" / "dicom"
    vol = load_series(dicom)
    assert vol.shape == (512, 512, 20)
    assert vol.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    ref = run_dcm2niix(dicom)
    ours = nib.as_closest_canonical(nib.load(save_nifti(vol, tmp_path / "ct.nii.gz")))
    np.testing.assert_array_equal(ours.get_fdata(), ref.get_fdata())
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)


def test_real_ct_discovery_groups_files_without_series_uid(shared_data):
    report = discover_series(shared_data / "ct_series_basel" / "dicom")
    assert len(report.series) == 1
    series = report.series[0]
    assert series.derived_uid and series.n_files == 20
    assert not report.skipped and not report.corrupt


def test_real_ct_labels_sit_on_the_right_tissue(shared_data):
    """A mirrored or shuffled volume puts the liver label on the wrong HU."""
    vol = load_series(shared_data / "ct_series_basel" / "dicom")
    seg = load_nifti(shared_data / "ct_series_basel" / "segmentation.nii.gz")
    labels = json.loads((shared_data / "ct_series_basel" / "labels.json").read_text())
    assert labels["5"].lower().startswith("liver") and labels["1"].lower().startswith("spleen")
    img, img_aff = canonical(vol)
    lab, lab_aff = canonical(seg)
    np.testing.assert_allclose(img_aff, lab_aff, atol=1e-3)

    def on_tissue(arr: np.ndarray) -> bool:
        liver, spleen = arr[lab == 5], arr[lab == 1]
        return bool(
            60 <= np.median(liver) <= 130
            and 50 <= np.median(spleen) <= 120
            # nearly all of each organ on soft tissue, not on air, fat or bone
            and np.mean((liver >= 40) & (liver <= 160)) > 0.95
            and np.mean((spleen >= 40) & (spleen <= 160)) > 0.95
        )

    assert on_tissue(img)
    # The check can fail: any flip or axis swap moves the organs off their tissue.
    for wrong in (img[::-1], img[:, ::-1], img[:, :, ::-1], img.transpose(1, 0, 2)):
        assert not on_tissue(wrong)


@pytest.mark.parametrize("n", range(1, 10))
def test_transfer_syntaxes_match_shipped_dcm2niix_reference(shared_data, n, tmp_path):
    src = shared_data / "transfer_syntaxes"
    vol = load_series(src / "In" / f"{n}.dcm")
    ref = nib.as_closest_canonical(nib.load(src / "Ref" / f"{n}.nii"))
    ours = nib.as_closest_canonical(nib.load(save_nifti(vol, tmp_path / "t.nii")))
    assert ours.shape == ref.shape == (64, 64, 35)  # a Siemens mosaic, unpacked
    np.testing.assert_array_equal(ours.get_fdata(), ref.get_fdata())
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-3)


def test_transfer_syntaxes_match_installed_dcm2niix(shared_data, run_dcm2niix):
    src = shared_data / "transfer_syntaxes" / "In"
    for n in (1, 3, 9):  # explicit LE, big endian, JPEG 2000: different pixel paths here
        ref = run_dcm2niix(src / f"{n}.dcm")
        img, aff = canonical(load_series(src / f"{n}.dcm"))
        np.testing.assert_array_equal(img, np.asanyarray(ref.dataobj))
        np.testing.assert_allclose(aff, ref.affine, atol=1e-3)


def test_enhanced_multiframe_ct_matches_dcm2niix(run_dcm2niix, tmp_path):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("eCT_Supplemental.dcm")
    vol = load_series(path)
    assert vol.shape == (512, 512, 2)
    ref = run_dcm2niix(path)
    img, aff = canonical(vol)
    np.testing.assert_allclose(img, ref.get_fdata(), atol=1e-3)
    np.testing.assert_allclose(aff, ref.affine, atol=1e-3)


def test_multiframe_without_geometry_is_refused_not_invented():
    """pydicom's emri_small is Enhanced MR stripped of its functional groups."""
    from pydicom.data import get_testdata_file

    from medai_lab.errors import DicomError

    with pytest.raises(DicomError, match="ImagePositionPatient"):
        load_series(get_testdata_file("emri_small.dcm"))

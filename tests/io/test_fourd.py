"""4-D series (slices sharing positions) against dcm2niix, from real headers and pixels.

Every series here is built from a real DICOM file (pydicom's test files, the shared Siemens
mosaic): its header, pixels and geometry, with only the attributes a 4-D acquisition varies
set per volume. dcm2niix (Debian) converts the same files; voxels, affines, bval and bvec are
compared with what it wrote, so expected values are never typed in here.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from series4d_helpers import build_series, canonical_4d, run_dcm2niix_all, sidecar

from medai_lab.errors import SeriesGeometryError
from medai_lab.io import convert_dicom_to_nifti, discover_series, load_series

MR = "MR_small.dcm"  # Toshiba MR, 64x64
DIRS = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0.6, 0.8), (0, 0, 0), (0.6, 0, -0.8)]

SERIES = {
    # name: (base file, volumes, slices)
    "echo": (MR, [{"EchoTime": f"{te}", "EchoNumbers": i + 1} for i, te in enumerate((9, 18, 27))]),
    "cine": (MR, [{"TriggerTime": f"{t}"} for t in (0, 35, 70, 105)]),
    "time": (
        MR,
        [
            {"TemporalPositionIdentifier": i + 1, "AcquisitionTime": f"1200{i:02d}"}
            for i in range(4)
        ],
    ),
    "dwi": (
        MR,
        [
            {
                "DiffusionBValue": 0.0 if not any(d) else 1000.0,
                "DiffusionGradientOrientation": list(d),
            }
            for d in DIRS  # two b=0 volumes: the same (b, g) twice, told apart by acquisition
        ],
    ),
    "ct_phases": ("CT_small.dcm", [{"AcquisitionNumber": i + 1} for i in range(3)]),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fourd")
    return {
        name: build_series(get_testdata_file(base), root / name, vols, seed=name)
        for name, (base, vols) in SERIES.items()
    }


@pytest.fixture(scope="module")
def reference(built, dcm2niix, tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("fourd_ref")
    return {name: run_dcm2niix_all(dcm2niix, path, root / name) for name, path in built.items()}


def _ref_stack(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """dcm2niix's output as one canonical 4-D array (it writes echoes as separate files)."""
    imgs = [nib.as_closest_canonical(nib.load(f)) for f in files]
    arrs = [np.asanyarray(i.dataobj) for i in imgs]
    arr = arrs[0] if len(arrs) == 1 else np.stack(arrs, axis=-1)
    return arr, imgs[0].affine


@pytest.mark.parametrize("name", list(SERIES))
def test_4d_series_loads_as_dcm2niix_converts_it(name, built, reference):
    vol = load_series(built[name])
    ref, ref_affine = _ref_stack(reference[name])
    assert vol.array.ndim == 4 and vol.n_volumes == len(SERIES[name][1])
    ours, affine = canonical_4d(vol.array, vol.affine)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(affine, ref_affine, atol=1e-3)
    assert vol.axis4 is not None and vol.axis4["size"] == vol.n_volumes
    # Each volume is a 3-D Volume on the same grid.
    np.testing.assert_array_equal(vol.volume(1).array, vol.array[..., 1])


def test_axis_names_and_values_follow_the_varying_attribute(built, reference):
    echo = load_series(built["echo"]).axis4
    assert echo["name"] == "echo" and echo["unit"] == "ms"
    # dcm2niix writes one file per echo, each with its EchoTime (s) in the sidecar.
    ref_te = [sidecar(f)["EchoTime"] * 1000 for f in reference["echo"]]
    np.testing.assert_allclose(echo["values"], ref_te)
    cine = load_series(built["cine"]).axis4
    assert cine["name"] == "phase" and cine["attribute"] == "trigger_time"
    assert cine["values"] == sorted(cine["values"]) and len(set(cine["values"])) == 4
    time = load_series(built["time"]).axis4
    assert time["name"] == "time" and time["attribute"] == "acquisition_time"
    assert time["values"][0] == 0 and np.all(np.diff(time["values"]) > 0)


def _world(bvec: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL-convention bvecs (voxel frame, x negated when det > 0) as RAS world directions."""
    v = np.array(bvec, dtype=float)
    if np.linalg.det(affine[:3, :3]) > 0:
        v[0] = -v[0]
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return rot @ v


def _check_diffusion(ours: Path, ref_nii: Path) -> None:
    ref_base = ref_nii.with_suffix("")
    np.testing.assert_allclose(
        np.loadtxt(ours.with_suffix(".bval")), np.loadtxt(ref_base.with_suffix(".bval")), atol=1e-4
    )
    ours_vec = np.loadtxt(ours.with_suffix(".bvec"))
    ref_vec = np.loadtxt(ref_base.with_suffix(".bvec"))
    ours_aff = nib.load(ours.with_suffix(".nii")).affine
    np.testing.assert_allclose(
        _world(ours_vec, ours_aff), _world(ref_vec, nib.load(ref_nii).affine), atol=1e-4
    )
    # The check can fail: a direction read in the wrong frame lands elsewhere.
    assert not np.allclose(
        _world(ours_vec[::-1], ours_aff), _world(ref_vec, nib.load(ref_nii).affine), atol=1e-4
    )


def test_diffusion_convert_writes_bval_bvec_like_dcm2niix(built, reference, tmp_path):
    out = tmp_path / "dwi.nii"
    vol = convert_dicom_to_nifti(built["dwi"], out)
    assert vol.axis4["name"] == "diffusion"
    (ref_nii,) = reference["dwi"]
    _check_diffusion(out, ref_nii)
    img = nib.load(out)
    ref, ref_aff = _ref_stack([ref_nii])
    ours, aff = canonical_4d(np.asanyarray(img.dataobj), img.affine)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(aff, ref_aff, atol=1e-3)
    meta = json.loads((tmp_path / "dwi.json").read_text())
    assert meta["Axis4"]["name"] == "diffusion" and meta["Axis4"]["size"] == len(DIRS)
    assert meta["RepetitionTime"] == pytest.approx(sidecar(ref_nii)["RepetitionTime"])


def test_vendor_private_b_values_when_standard_ones_are_absent(dcm2niix, tmp_path):
    """A real Philips header with b-value and gradient only in its private groups."""
    vols = [
        {
            ("Philips Imaging DD 001", 0x2001, 0x03, "FL"): 0.0 if not any(d) else 800.0,
            ("Philips MR Imaging DD 001", 0x2005, 0xB0, "FL"): d[0],
            ("Philips MR Imaging DD 001", 0x2005, 0xB1, "FL"): d[1],
            ("Philips MR Imaging DD 001", 0x2005, 0xB2, "FL"): d[2],
        }
        for d in DIRS[:4]
    ]
    src = build_series(get_testdata_file("MR2_UNCR.dcm"), tmp_path / "p", vols, crop=48)
    (ref_nii,) = run_dcm2niix_all(dcm2niix, src, tmp_path / "ref")
    out = tmp_path / "ours.nii"
    vol = convert_dicom_to_nifti(src, out)
    assert vol.axis4["name"] == "diffusion"
    _check_diffusion(out, ref_nii)


def test_siemens_mosaic_time_series_matches_dcm2niix(shared_data, dcm2niix, tmp_path):
    """Repeated real Siemens mosaics (an fMRI run): volumes told apart by AcquisitionNumber."""
    base = shared_data / "transfer_syntaxes" / "In" / "1.dcm"
    src = build_series(
        base, tmp_path / "m", [{"AcquisitionNumber": i + 1} for i in range(3)], n_slices=1
    )
    (ref_nii,) = run_dcm2niix_all(dcm2niix, src, tmp_path / "ref")
    vol = load_series(src)
    ref, ref_aff = _ref_stack([ref_nii])
    ours, aff = canonical_4d(vol.array, vol.affine)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(aff, ref_aff, atol=1e-3)


def test_split_echo_writes_the_volumes_dcm2niix_writes(built, reference, tmp_path):
    convert_dicom_to_nifti(built["echo"], tmp_path / "e.nii.gz", split="echo")
    for n, ref_file in enumerate(reference["echo"], start=1):
        ours = nib.as_closest_canonical(nib.load(tmp_path / f"e_echo-{n}.nii.gz"))
        ref = nib.as_closest_canonical(nib.load(ref_file))
        assert ours.ndim == 3
        np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(ref.dataobj))
        te = json.loads((tmp_path / f"e_echo-{n}.json").read_text())["EchoTime"]
        assert te == pytest.approx(sidecar(ref_file)["EchoTime"])
    with pytest.raises(Exception, match="varies by echo"):
        convert_dicom_to_nifti(built["echo"], tmp_path / "x.nii.gz", split="time")
    assert not list(tmp_path.glob("x*"))


def test_genuine_duplicates_are_refused_with_one_line(tmp_path):
    src = build_series(
        get_testdata_file(MR), tmp_path / "d", [{"EchoTime": "9"}, {"EchoTime": "9"}], repeat=1
    )
    with pytest.raises(SeriesGeometryError, match="duplicate") as err:
        load_series(src)
    assert "\n" not in str(err.value)


def test_incomplete_4d_series_is_refused(built, tmp_path):
    import shutil

    src = tmp_path / "inc"
    shutil.copytree(built["cine"], src)
    sorted(src.iterdir())[0].unlink()
    with pytest.raises(SeriesGeometryError, match="complete volumes"):
        load_series(src)


def test_info_lists_the_fourth_axis(built):
    line = discover_series(built["dwi"]).describe()
    assert f"4-D: {len(DIRS)} x diffusion" in line and "b_value" in line


def test_3d_series_keep_the_3d_api(shared_data):
    vol = load_series(shared_data / "ct_series_basel" / "dicom")
    assert vol.array.ndim == 3 and vol.n_volumes == 1 and vol.axis4 is None
    assert "axis4" not in vol.meta and vol.volume(0) is vol


ENHANCED = {
    "echo": [{"MREchoSequence": {"EffectiveEchoTime": te}} for te in (9.0, 18.0, 27.0)],
    "phase": [
        {"CardiacSynchronizationSequence": {"NominalCardiacTriggerDelayTime": t}}
        for t in (0.0, 30.0, 60.0)
    ],
    "diffusion": [
        {"MRDiffusionSequence": {"DiffusionBValue": b, "DiffusionDirectionality": "BMATRIX"}}
        for b in (0.0, 500.0, 1000.0)
    ],
}


@pytest.mark.parametrize("axis", list(ENHANCED))
def test_enhanced_multiframe_volumes_hold_the_frames_dcm2niix_reads(axis, dcm2niix, tmp_path):
    """Enhanced MR from a real slice: per-frame functional groups carry the 4th axis.

    This dcm2niix release writes these frames as one 3-D run sorted by position (the frames
    of each position side by side, in stored order), so slice ``k * n_volumes + t`` of its
    output must be slice ``k`` of our volume ``t``.
    """
    from series4d_helpers import build_enhanced

    src = build_enhanced(get_testdata_file(MR), tmp_path / "e", ENHANCED[axis])
    (ref_nii,) = run_dcm2niix_all(dcm2niix, src, tmp_path / "ref")
    vol = load_series(src)
    assert vol.axis4["name"] == axis and vol.n_volumes == 3
    ref = np.asanyarray(nib.as_closest_canonical(nib.load(ref_nii)).dataobj)
    ours, _ = canonical_4d(vol.array, vol.affine)
    np.testing.assert_array_equal(ours, ref.reshape(ours.shape))

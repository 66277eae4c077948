"""CT-like phantoms: determinism, anatomy (RAS+ sides), HU ranges and the MSD dataset writer."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from medai_lab import catalogue
from medai_lab.datasets import make_phantom, phantom_tasks, write_phantom_dataset
from medai_lab.errors import MedaiError
from medai_lab.io.nifti import load_nifti

TASKS = phantom_tasks()

SMALL = (48, 48, 32)


@cache
def _case(task: str, seed: int = 0, shape=(96, 96, 64)):
    return make_phantom(task, seed, shape)


def _world(vol, mask: np.ndarray) -> np.ndarray:
    """RAS+ mm of the voxels in ``mask``."""
    return vol.voxel_to_world(np.argwhere(mask).astype(float))


def _body_centre_x(image) -> float:
    # The couch is symmetric about the body in x, so it does not move the x centroid.
    return float(_world(image, image.array > -500)[:, 0].mean())


def _median(image, label, value: int) -> float:
    return float(np.median(image.array[label.array == value]))


def test_same_seed_is_byte_identical_and_seeds_differ():
    for task in TASKS:
        img_a, lab_a = make_phantom(task, 7, SMALL)
        img_b, lab_b = make_phantom(task, 7, SMALL)
        assert img_a.array.tobytes() == img_b.array.tobytes()
        assert lab_a.array.tobytes() == lab_b.array.tobytes()
        img_c, lab_c = make_phantom(task, 8, SMALL)
        assert not np.array_equal(img_a.array, img_c.array)
        assert not np.array_equal(lab_a.array, lab_c.array)


@pytest.mark.parametrize("task", TASKS)
def test_image_and_label_share_an_lps_grid_centred_on_the_origin(task):
    image, label = _case(task)
    assert image.array.dtype == np.int16 and label.array.dtype == np.uint8
    assert image.shape == label.shape == (96, 96, 64)
    np.testing.assert_array_equal(image.affine, label.affine)
    np.testing.assert_allclose(np.diag(image.affine), [-1.5, -1.5, 2.5, 1.0])
    assert image.orientation == "LPS"  # stored like a real axial CT
    centre = image.voxel_to_world((np.array(image.shape) - 1) / 2)
    np.testing.assert_allclose(centre, 0.0, atol=1e-9)
    assert image.meta["modality"] == "CT"


@pytest.mark.parametrize("task", TASKS)
def test_every_label_present_for_many_seeds_and_grids(task):
    grids = [((32, 32, 16), (1.0, 1.0, 3.0)), ((40, 56, 24), (0.9, 0.8, 4.0))]
    for shape, spacing in grids:
        for seed in range(8):
            _, label = make_phantom(task, seed, shape, spacing)
            values, counts = np.unique(label.array, return_counts=True)
            assert list(values) == list(catalogue.get(task).label_map(background=True)), (
                shape,
                seed,
            )
            assert counts.min() > 0


@pytest.mark.parametrize("task", TASKS)
def test_air_noise_and_body_wall(task):
    image, _ = _case(task)
    a = image.array
    corner = a[:8, :8, :].astype(float)  # outside the body
    assert abs(np.median(corner) + 1000) <= 5
    assert 8 <= corner.std() <= 17  # seeded quantum noise, sigma 10-15 HU
    fat = np.count_nonzero((a > -130) & (a < -70))
    assert fat > 0.03 * np.count_nonzero(a > -500)  # subcutaneous (and other) fat is there


def test_lung_hu_both_lungs_and_nodules():
    image, label = _case("lung")
    lung, nodule = _median(image, label, 1), _median(image, label, 2)
    assert lung < -700
    assert nodule > lung + 400  # solid nodules stand out of the parenchyma
    x = _world(image, label.array == 1)[:, 0] - _body_centre_x(image)
    assert 0.3 < np.mean(x > 0) < 0.7  # two lungs, one each side
    assert 10 <= np.count_nonzero(label.array == 2) < 0.05 * np.count_nonzero(label.array == 1)


def test_liver_hu_tumours_and_side():
    image, label = _case("liver")
    liver, tumour = _median(image, label, 1), _median(image, label, 2)
    assert 40 <= liver <= 90
    assert 10 <= tumour <= liver - 15  # hypodense lesions
    centroid = _world(image, label.array == 1).mean(axis=0)
    # RAS+: +x is the patient's right, where the liver lies.
    assert centroid[0] > _body_centre_x(image) + 5
    # In LPS storage the first array axis runs toward the patient's left: liver at low i.
    assert np.argwhere(label.array == 1)[:, 0].mean() < image.shape[0] / 2
    # Lung bases appear only in the top slices, above the liver dome: look for air-like voxels
    # in a 30 mm cylinder around the body axis (inside the body; bowel gas is sparse).
    nx, ny, nz = image.shape
    ij = np.argwhere(np.ones((nx, ny), dtype=bool)).astype(float)
    xy = image.voxel_to_world(np.c_[ij, np.zeros(len(ij))])[:, :2]
    core = (np.hypot(xy[:, 0] - _body_centre_x(image), xy[:, 1]) < 30).reshape(nx, ny)
    lungish = np.count_nonzero((image.array < -700) & core[:, :, None], axis=(0, 1))
    lungish = lungish / np.count_nonzero(core)
    assert lungish[: int(0.6 * nz)].max() < 0.05
    assert lungish[-1] > 0.15


def test_heart_contrast_left_atrium_posterior_and_anatomy():
    image, label = _case("heart")
    assert _median(image, label, 2) > 150  # contrast-filled left atrium
    assert 30 <= np.percentile(image.array[label.array == 1], 25) <= 70  # myocardium
    assert np.percentile(image.array[label.array == 1], 90) > 200  # contrast chambers
    heart = _world(image, label.array == 1).mean(axis=0)
    atrium = _world(image, label.array == 2).mean(axis=0)
    assert atrium[1] < heart[1]  # RAS +y is anterior: the left atrium is the posterior chamber
    cx = _body_centre_x(image)
    assert heart[0] < cx  # most of the heart lies on the patient's left (-x)
    bone = image.array > 600
    pts = _world(image, bone)
    spine = pts[np.abs(pts[:, 0] - cx) < 6]  # the midline: vertebrae, not ribs
    assert len(spine) > 50
    assert heart[1] > spine[:, 1].mean() + 15  # heart anterior of the spine
    assert np.percentile(image.array[bone], 99) > 700  # cortical bone
    # Lungs (not labelled here) flank the heart.
    assert np.count_nonzero(image.array < -800) > 0.1 * image.array.size


def test_write_nifti_dataset_round_trips(tmp_path):
    out = tmp_path / "Task_lung"
    result = write_phantom_dataset(out, "lung", 2, seed=5, shape=SMALL, progress=False)
    assert result == out
    info = json.loads((out / "dataset.json").read_text())
    assert info["labels"] == {"0": "background", "1": "lung", "2": "nodule"}
    assert info["modality"] == {"0": "CT"} and info["tensorImageSize"] == "3D"
    assert info["numTraining"] == 2 and info["numTest"] == 0 and info["test"] == []
    assert "synthetic" in info["description"].lower()
    assert info["reference"] == "MedAI Lab phantom"
    assert [e["image"] for e in info["training"]] == [
        "./imagesTr/lung_000.nii.gz",
        "./imagesTr/lung_001.nii.gz",
    ]
    for i, entry in enumerate(info["training"]):
        image, label = make_phantom("lung", 5 + i, SMALL)
        img_back, lab_back = load_nifti(out / entry["image"]), load_nifti(out / entry["label"])
        np.testing.assert_array_equal(img_back.array, image.array)
        np.testing.assert_array_equal(lab_back.array, label.array)
        assert img_back.array.dtype == np.int16
        np.testing.assert_allclose(img_back.affine, image.affine, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Task_lung"]  # no temp folder left


def test_write_dicom_dataset(tmp_path):
    import pydicom

    out = tmp_path / "liver_dcm"
    write_phantom_dataset(out, "liver", 1, fmt="dicom", seed=2, shape=SMALL, progress=False)
    info = json.loads((out / "dataset.json").read_text())
    assert info["training"] == [
        {"image": "./imagesTr/liver_000", "label": "./labelsTr/liver_000.nii.gz"}
    ]
    files = sorted((out / "imagesTr" / "liver_000").glob("*.dcm"))
    assert len(files) == SMALL[2]
    image, label = make_phantom("liver", 2, SMALL)
    for ds in (pydicom.dcmread(f) for f in files[:: SMALL[2] // 3]):
        k = int(ds.InstanceNumber) - 1
        assert ds.Modality == "CT"
        assert ds.PatientID == "PHANTOM-liver_000"
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, image.array[:, :, k].T)  # rows are y, columns x
        # DICOM positions are LPS: the RAS position with x and y negated.
        ras = image.voxel_to_world((0, 0, k))
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], ras * [-1, -1, 1])
    lab_back = load_nifti(out / "labelsTr" / "liver_000.nii.gz")
    np.testing.assert_array_equal(lab_back.array, label.array)


def test_existing_empty_folder_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    write_phantom_dataset(out, "heart", 1, shape=(32, 32, 16), progress=False)
    assert (out / "labelsTr" / "heart_000.nii.gz").is_file()


def test_bad_inputs_raise_one_line_errors(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(MedaiError, match="not empty"):
        write_phantom_dataset(full, "lung", 1, shape=SMALL, progress=False)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(MedaiError):
        write_phantom_dataset(a_file, "lung", 1, shape=SMALL, progress=False)
    bad_calls = [
        dict(task="kidney"),
        dict(cases=0),
        dict(cases=1.5),
        dict(fmt="png"),
        dict(seed=-1),
        dict(shape=(8, 8, 8)),
        dict(spacing=(1.0, 0.0, 1.0)),
    ]
    for bad in bad_calls:
        kwargs = dict(task="lung", cases=1, shape=SMALL, progress=False) | bad
        with pytest.raises(MedaiError) as err:
            write_phantom_dataset(tmp_path / "new", **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(MedaiError, match="kidney"):
        make_phantom("kidney", 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "full"]


def test_a_crash_leaves_no_half_dataset(tmp_path, monkeypatch):
    import medai_lab.datasets.phantom as phantom

    real = phantom.make_phantom

    def flaky(task, seed, *args):
        if seed == 1:
            raise RuntimeError("boom")
        return real(task, seed, *args)

    monkeypatch.setattr(phantom, "make_phantom", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        write_phantom_dataset(tmp_path / "ds", "lung", 3, shape=SMALL, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_import_stays_light():
    code = (
        "import sys, medai_lab.datasets\n"
        "heavy = [m for m in ('torch', 'monai', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])

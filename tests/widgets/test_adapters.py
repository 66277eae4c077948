"""Every adapter puts an asymmetric body on the expected screen side: orientation comes from
the geometry each object carries, never from its array order."""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, save_nifti, write_dicom_series
from medai_lab.widgets import scene_of
from medai_lab.widgets.planes import screen_slice, voxel_to_screen

# A blob at the patient's right, anterior and superior (RAS+ mm from the grid centre).
BLOB_RAS = np.array([30.0, 20.0, 12.0])


def body(codes: str = "LPS", shape=(48, 40, 16), spacing=(2.0, 2.5, 4.0)) -> Volume:
    """A volume in ``codes`` orientation whose voxel values depend on the world position only."""
    axes = {"R": [1, 0, 0], "L": [-1, 0, 0], "A": [0, 1, 0], "P": [0, -1, 0],
            "S": [0, 0, 1], "I": [0, 0, -1]}  # fmt: skip
    affine = np.eye(4)
    for ax, code in enumerate(codes):
        affine[:3, ax] = np.array(axes[code], float) * spacing[ax]
    centre = (np.array(shape) - 1) / 2
    affine[:3, 3] = -affine[:3, :3] @ centre
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    inside = np.linalg.norm((world - BLOB_RAS) / [8, 8, 8], axis=-1) < 1
    array = np.where(inside, 1000, -1000).astype(np.int16)
    return Volume(array, affine, {"modality": "CT"})


def blob_screen(scene_image: Volume, plane: str, convention: str = "radiological"):
    """(column fraction, row fraction) of the blob's centre in the plane through it."""
    arr = scene_image.array
    centre = np.argwhere(arr > 0).mean(axis=0).round().astype(int)
    axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    img = screen_slice(arr, plane, int(centre[axis]), convention)
    rows, cols = np.nonzero(img > 0)
    expected = voxel_to_screen(tuple(centre), arr.shape, plane, convention)
    assert abs(cols.mean() - expected[0]) <= 1 and abs(rows.mean() - expected[1]) <= 1
    return cols.mean() / img.shape[1], rows.mean() / img.shape[0]


def representations(tmp_path: Path):
    lps = body("LPS")
    yield "Volume LPS", lps
    yield "Volume oblique order", body("SRA", shape=(16, 48, 40), spacing=(4.0, 2.0, 2.5))
    las = body("LAS")
    yield "nibabel LAS", nib.Nifti1Image(las.array, las.affine)
    yield "numpy + affine", (body("RPI").array, body("RPI").affine)
    yield "NIfTI path", save_nifti(body("PSL", shape=(40, 16, 48), spacing=(2.5, 4.0, 2.0)),
                                   tmp_path / "b.nii.gz")  # fmt: skip
    write_dicom_series(lps, tmp_path / "dicom")
    yield "DICOM folder", tmp_path / "dicom"
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.transpose(lps.array, (2, 1, 0)))
    image.SetSpacing(lps.spacing)
    lps_affine = np.diag([-1, -1, 1, 1]) @ lps.affine
    image.SetOrigin(lps_affine[:3, 3].tolist())
    image.SetDirection((lps_affine[:3, :3] / np.array(lps.spacing)).ravel().tolist())
    yield "SimpleITK", image
    monai_data = pytest.importorskip("monai.data")
    ras = body("RAS")
    yield "MetaTensor", monai_data.MetaTensor(ras.array[None].astype(np.float32), affine=ras.affine)


def test_each_adapter_shows_the_right_side_on_the_left(tmp_path: Path) -> None:
    seen = []
    for name, obj in representations(tmp_path):
        scene = scene_of(obj[0], affine=obj[1]) if isinstance(obj, tuple) else scene_of(obj)
        assert scene.image.orientation == "RAS", name
        col, row = blob_screen(scene.image, "axial")
        assert col < 0.4 and row < 0.4, (name, col, row)  # patient right on the left, anterior up
        col_n, _ = blob_screen(scene.image, "axial", "neurological")
        assert col_n > 0.6, name
        col, row = blob_screen(scene.image, "coronal")
        assert col < 0.4 and row < 0.4, name  # right on the left, superior up
        col, row = blob_screen(scene.image, "sagittal")
        assert col < 0.4 and row < 0.4, name  # anterior on the left, superior up
        seen.append(name)
    assert len(seen) >= 7


def test_overlays_follow_their_own_geometry(tmp_path: Path) -> None:
    """A label map stored in another orientation is reoriented onto the image, not misread."""
    image = body("LPS")
    mask = image.array > 0
    labels_las = Volume(mask.astype(np.uint8), image.affine, {}).to_ras()  # RAS order on disk
    path = save_nifti(labels_las, tmp_path / "labels.nii.gz")
    scene = scene_of(image, path)
    assert np.array_equal(scene.labels > 0, scene.image.array > 0)
    bad = Volume(mask[:, :, :-1].astype(np.uint8), image.affine, {})
    with pytest.raises(MedaiError, match="not on the image grid"):
        scene_of(image, bad)


def test_bare_array_needs_geometry_or_warns() -> None:
    arr = np.zeros((4, 5, 6), np.int16)
    with pytest.warns(UserWarning, match="no geometry"):
        scene = scene_of(arr)
    assert scene.image.spacing == (1.0, 1.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scene_of(arr, spacing=(0.5, 0.5, 2)).image.spacing == (0.5, 0.5, 2.0)
    assert scene_of(arr[None], spacing=1).image.shape == (4, 5, 6)  # a channel axis
    with pytest.raises(MedaiError, match="3-D"):
        scene_of(np.zeros((2, 3, 4, 5)), spacing=1)
    with pytest.raises(MedaiError, match="cannot view"):
        scene_of([[1, 2]])
    with pytest.raises(MedaiError, match="no such file"):
        scene_of("/nonexistent/ct.nii.gz")


def test_real_ct_and_its_label_map(shared_data: Path) -> None:
    """The Basel CT (DICOM, LPS) and its TotalSegmentator map (NIfTI, LAS): liver on the left
    of the axial screen in radiological convention, names from labels.json."""
    folder = shared_data / "ct_series_basel"
    scene = scene_of(folder / "dicom", folder / "segmentation.nii.gz")
    assert scene.names[5] == "liver"
    liver = (scene.labels == 5).astype(np.int16)
    col, _ = blob_screen(Volume(liver, scene.image.affine), "axial")
    assert col < 0.5
    spleen = (scene.labels == 1).astype(np.int16)
    assert blob_screen(Volume(spleen, scene.image.affine), "axial")[0] > 0.5
    table = {t["value"]: t for t in scene.table}
    assert table[5]["name"] == "liver" and len(table[5]["color"]) == 3

"""``POST labels``: a viewer's edited labels written beside the image (NIfTI; + SEG for DICOM).

The labels are made on the grid the ``volume`` endpoint streams (the image as nibabel's
``as_closest_canonical`` gives it, checked here independently), sent zlib-compressed like the
MedAI Viewer document does, and read back with nibabel / the SEG reader.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from tornado.httpclient import HTTPClientError

AFFINE = np.array([[-0.8, 0, 0, 30.0], [0, 0.9, 0, -12.0], [0, 0, 2.5, 4.0], [0, 0, 0, 1]])


@pytest.fixture
def nifti_in_root(jp_root_dir: Path) -> Path:
    import nibabel as nib

    rng = np.random.default_rng(5)
    img = rng.integers(-100, 200, (20, 16, 8)).astype(np.int16)
    path = jp_root_dir / "sub" / "scan.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(img, AFFINE), path)
    return path


def body(labels: np.ndarray) -> bytes:
    return zlib.compress(np.asfortranarray(labels).tobytes(order="F"))


async def post(jp_fetch, path: str, labels: np.ndarray, data: bytes | None = None):
    shape = ",".join(map(str, labels.shape))
    data = data if data is not None else body(labels)
    return await jp_fetch(
        "medai-lab", "api", "labels", method="POST", body=data,
        params={"path": path, "shape": shape, "dtype": labels.dtype.name},
    )  # fmt: skip


async def test_nifti_labels_land_beside_the_image_on_its_world_grid(
    jp_fetch, nifti_in_root: Path
) -> None:
    import nibabel as nib

    canon = nib.as_closest_canonical(nib.load(nifti_in_root))
    grey = np.asarray(canon.dataobj)
    labels = ((grey > 50).astype(np.uint8)) + (grey > 150)  # values 0, 1, 2 on the RAS grid
    answer = await post(jp_fetch, "sub/scan.nii.gz", labels)
    reply = json.loads(answer.body)
    assert reply == {"nifti": "sub/scan_labels.nii.gz", "seg": None,
                     "voxels": int(np.count_nonzero(labels))}  # fmt: skip
    written = nib.load(nifti_in_root.parent / "scan_labels.nii.gz")
    np.testing.assert_allclose(written.affine, canon.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    # In the image's own voxel order too (world-aligned, whatever the file orientation).
    back = nib.as_closest_canonical(written)
    np.testing.assert_array_equal(np.asarray(back.dataobj), labels)
    assert not [p for p in nifti_in_root.parent.iterdir() if p.name.startswith(".medai-save-")]


@pytest.mark.parametrize(
    ("shape", "data", "status"),
    [
        ((20, 16, 7), None, 422),  # not the image grid
        ((20, 16, 8), b"not zlib at all", 422),
        ((20, 16, 8), zlib.compress(b"\0" * 100), 422),  # too short
        ((20, 16, 8), zlib.compress(b"\0" * (20 * 16 * 8 + 1)), 422),  # too long
    ],
)
async def test_bad_bodies_are_one_line_and_leave_the_previous_save(
    jp_fetch, nifti_in_root: Path, shape, data, status
) -> None:
    target = nifti_in_root.parent / "scan_labels.nii.gz"
    target.write_bytes(b"previous save")
    with pytest.raises(HTTPClientError) as err:
        await post(jp_fetch, "sub/scan.nii.gz", np.zeros(shape, np.uint8), data)
    assert err.value.code == status
    message = json.loads(err.value.response.body)["message"]
    assert message and "\n" not in message
    assert target.read_bytes() == b"previous save"
    assert sorted(p.name for p in nifti_in_root.parent.iterdir()) == sorted(
        ["scan.nii.gz", "scan_labels.nii.gz"]
    )


async def test_paths_outside_the_root_are_refused(jp_fetch, nifti_in_root: Path) -> None:
    for path in ("../scan.nii.gz", "/etc/passwd", "sub/missing.nii.gz"):
        with pytest.raises(HTTPClientError) as err:
            await post(jp_fetch, path, np.zeros((20, 16, 8), np.uint8))
        assert 400 <= err.value.code < 500


@pytest.fixture
def dicom_in_root(jp_root_dir: Path) -> Path:
    """A small CT series (LPS-tilted grid, UIDs from a seed) in the root: ``series/``."""
    from medai_lab.io import Volume, write_dicom_series

    affine = np.array([[0.0, -0.9, 0, 40.0], [0.8, 0, 0, -20.0], [0, 0, -2.0, 60.0], [0, 0, 0, 1]])
    image = np.linspace(-100, 200, 24 * 20 * 6).reshape(24, 20, 6).astype(np.int16)
    write_dicom_series(Volume(image, affine), jp_root_dir / "series", uid_seed="labels-save")
    return jp_root_dir / "series"


async def test_dicom_gets_nifti_and_a_seg_that_read_back(jp_fetch, dicom_in_root: Path) -> None:
    from medai_lab.io import load_nifti, load_series, read_seg

    ref = load_series(dicom_in_root)
    shape = ref.to_ras().array.shape[:3]
    labels = np.zeros(shape, np.uint8)
    labels[2:9, 3:7, 1:3] = 1
    labels[-5:-1, -6:, 4] = 2
    reply = json.loads((await post(jp_fetch, "series", labels)).body)
    assert reply["nifti"] == "series_labels.nii.gz" and reply["seg"] == "series_seg.dcm"
    nifti = load_nifti(dicom_in_root.parent / "series_labels.nii.gz")
    np.testing.assert_array_equal(nifti.to_ras().array, labels)
    seg = read_seg(dicom_in_root.parent / "series_seg.dcm", ref)
    np.testing.assert_array_equal(seg.volume.to_ras().array, labels)


async def test_a_refused_seg_writes_nothing(jp_fetch, jp_root_dir: Path, ct_in_root: Path) -> None:
    """The real CT has no SeriesInstanceUID: no SEG can reference it, so no NIfTI is left
    either (both are written to temporary names first and renamed only when both are done)."""
    labels = np.zeros((512, 512, 20), np.uint8)
    labels[200:260, 220:300, 5:9] = 1
    with pytest.raises(HTTPClientError) as err:
        await post(jp_fetch, "ct", labels)
    assert err.value.code == 422
    message = json.loads(err.value.response.body)["message"]
    assert "SeriesInstanceUID" in message and "\n" not in message
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["ct"]

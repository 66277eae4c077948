import gzip

import nibabel as nib
import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, save_nifti
from medai_lab.io.pgzip import write_gzip


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_round_trip_keeps_values_dtype_and_affine(tmp_path, name, dtype):
    rng = np.random.default_rng(1)
    arr = (rng.normal(0, 100, size=(7, 5, 3))).astype(dtype)
    affine = np.array([[-0.7, 0, 0.1, 10], [0, -0.8, 0, 20], [0, 0.05, 2.5, -30], [0, 0, 0, 1]])
    out = save_nifti(Volume(arr, affine), tmp_path / name)
    back = load_nifti(out)
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    hdr = nib.load(out).header
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp files left


def test_parallel_gzip_is_standard_gzip(tmp_path):
    data = np.random.default_rng(0).integers(0, 50, size=20_000_000, dtype=np.uint8).tobytes()
    write_gzip(data, tmp_path / "x.gz", workers=2)
    with gzip.open(tmp_path / "x.gz") as fh:
        assert fh.read() == data


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import medai_lab.io.pgzip as pgzip

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pgzip, "write_gzip", boom)
    with pytest.raises(OSError):
        save_nifti(Volume(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "v.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_bad_names_and_files(tmp_path):
    with pytest.raises(MedaiError, match=r"\.nii"):
        save_nifti(Volume(np.zeros((2, 2, 2)), np.eye(4)), tmp_path / "v.png")
    (tmp_path / "bad.nii.gz").write_bytes(b"garbage")
    with pytest.raises(MedaiError, match="cannot read"):
        load_nifti(tmp_path / "bad.nii.gz")
    with pytest.raises(MedaiError, match="no such"):
        load_nifti(tmp_path / "missing.nii")

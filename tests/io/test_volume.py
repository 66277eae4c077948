import numpy as np
import pytest

from medai_lab.io import Volume
from medai_lab.io.volume import axis_codes


def _lps_volume() -> Volume:
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    affine = np.diag([-0.5, -0.75, 2.0, 1.0])
    affine[:3, 3] = [10, 20, -30]
    return Volume(arr, affine)


def test_spacing_origin_and_orientation():
    vol = _lps_volume()
    assert vol.spacing == pytest.approx((0.5, 0.75, 2.0))
    assert vol.origin == pytest.approx((10, 20, -30))
    assert vol.orientation == "LPS"


def test_voxel_world_round_trip():
    vol = _lps_volume()
    ijk = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    xyz = vol.voxel_to_world(ijk)
    assert xyz[0] == pytest.approx([10 - 0.5, 20 - 1.5, -30 + 6])
    assert vol.world_to_voxel(xyz) == pytest.approx(ijk)


def test_to_ras_keeps_every_voxel_at_its_world_position():
    vol = _lps_volume()
    ras = vol.to_ras()
    assert ras.orientation == "RAS"
    for ijk in [(0, 0, 0), (1, 2, 3), (1, 0, 2)]:
        world = vol.voxel_to_world(ijk)
        r_ijk = np.rint(ras.world_to_voxel(world)).astype(int)
        assert ras.array[tuple(r_ijk)] == vol.array[ijk]


def test_permuted_axes_are_named_correctly():
    # Sagittal storage: i runs anterior->posterior, j superior->inferior, k right->left.
    affine = np.zeros((4, 4))
    affine[1, 0], affine[2, 1], affine[0, 2], affine[3, 3] = -1.0, -1.0, 1.0, 1.0
    assert axis_codes(affine) == ("P", "I", "R")
    vol = Volume(np.zeros((2, 3, 4)), affine)
    assert vol.to_ras().shape == (4, 2, 3)


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError):
        Volume(np.zeros((2, 2, 2)), np.eye(3))

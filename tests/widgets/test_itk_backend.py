"""The itkwidgets hand-over: ITK (LPS) geometry of our RAS+ volumes, and a clear refusal."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume
from medai_lab.widgets import view
from medai_lab.widgets.adapters import to_volume
from medai_lab.widgets.itk_backend import itk_geometry


def test_itk_geometry_round_trips_through_simpleitk() -> None:
    """SimpleITK uses ITK's LPS convention: an image built from our geometry reads back equal."""
    sitk = pytest.importorskip("SimpleITK")
    theta = np.deg2rad(20)
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-0.8, 0.9, 2.5])  # oblique, one flipped axis
    affine[:3, 3] = [12.5, -40.0, 101.0]
    vol = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), affine)
    geo = itk_geometry(vol)
    image = sitk.GetImageFromArray(np.transpose(vol.array, (2, 1, 0)))
    image.SetSpacing(geo["spacing"])
    image.SetOrigin(geo["origin"])
    image.SetDirection(geo["direction"].ravel().tolist())
    back = to_volume(image)
    assert np.allclose(back.affine, vol.affine) and np.array_equal(back.array, vol.array)


@pytest.mark.skipif(
    importlib.util.find_spec("itkwidgets") is not None, reason="itkwidgets installed"
)
def test_without_itkwidgets_the_message_says_what_to_do() -> None:
    with pytest.raises(MedaiError, match=r"itkwidgets.*not installed.*pip install.*offline"):
        view(np.zeros((4, 4, 4), np.int16), spacing=1, backend="itkwidgets")

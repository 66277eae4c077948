"""``view(..., backend="itkwidgets")``: hand the volume to itkwidgets with its true geometry."""

from __future__ import annotations

from typing import Any

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume
from medai_lab.widgets.adapters import same_grid, to_volume

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def itk_geometry(volume: Volume) -> dict[str, Any]:
    """ITK's (LPS) spacing, origin and direction matrix of a RAS+ :class:`Volume`."""
    spacing = np.asarray(volume.spacing)
    direction = _RAS_TO_LPS @ volume.affine[:3, :3] / spacing
    origin = _RAS_TO_LPS @ volume.affine[:3, 3]
    return {"spacing": spacing.tolist(), "origin": origin.tolist(), "direction": direction}


def to_itk(volume: Volume) -> Any:
    """An ``itk.Image`` (z-y-x buffer, LPS geometry) of a :class:`Volume`."""
    import itk

    image = itk.image_from_array(np.ascontiguousarray(np.transpose(volume.array, (2, 1, 0))))
    geo = itk_geometry(volume)
    image.SetSpacing(geo["spacing"])
    image.SetOrigin(geo["origin"])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(geo["direction"])))
    return image


def view_itk(image: Any, labels: Any = None, *, spacing: Any = None, affine: Any = None) -> Any:
    """itkwidgets' viewer of ``image`` (and ``labels``), or one clear error saying why not."""
    try:
        import itk  # noqa: F401
        import itkwidgets
    except ImportError as exc:
        raise MedaiError(
            f"backend='itkwidgets' needs itkwidgets and itk ({exc.name} is not installed): "
            "pip install 'itkwidgets[notebook]'; note that itkwidgets >= 1.0 loads its viewer "
            "from the internet, so on an offline hub use the default backend"
        ) from None
    vol = to_volume(image, spacing=spacing, affine=affine)
    kwargs: dict[str, Any] = {"image": to_itk(vol)}
    if labels is not None:
        lab = to_volume(labels, spacing=spacing, affine=vol.affine, name="labels")
        same_grid(vol, lab, "labels")
        kwargs["label_image"] = to_itk(lab)
    try:
        return itkwidgets.view(**kwargs)
    except Exception as exc:  # e.g. its viewer cannot be fetched on an air-gapped hub
        raise MedaiError(f"itkwidgets could not show the image ({type(exc).__name__}); "
                         "it may need network access to load its viewer") from None  # fmt: skip

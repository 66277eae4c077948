"""Turn whatever a notebook holds into a :class:`~medai_lab.io.Volume` with its true geometry.

Orientation always comes from an affine (or a direction matrix), never from array order: a
bare NumPy array needs ``affine=`` or is taken as RAS+ with ``spacing=`` and a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def to_volume(obj: Any, *, spacing: Any = None, affine: Any = None, name: str = "image") -> Volume:
    """A :class:`Volume` from a Volume, NumPy array, nibabel image, MONAI MetaTensor,
    SimpleITK image, or a path to a NIfTI file or DICOM folder.

    Parameters
    ----------
    obj
        The image. 4-D inputs with a singleton channel (MONAI ``C,H,W,D``) are squeezed.
    spacing, affine
        Geometry for bare arrays (``affine`` wins; an array with neither is RAS+ 1 mm).
    name
        Used in error messages ("labels", "prediction").
    """
    if isinstance(obj, Volume):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return _from_path(Path(obj), name)
    module = type(obj).__module__.split(".")[0]
    if module == "SimpleITK":
        return _from_sitk(obj)
    if module == "monai" or (hasattr(obj, "affine") and hasattr(obj, "as_tensor")):
        return _from_metatensor(obj, name)
    if module == "torch":
        obj = obj.detach().cpu().numpy()
    if hasattr(obj, "affine") and hasattr(obj, "dataobj"):  # nibabel SpatialImage
        return Volume(np.asanyarray(obj.dataobj), np.asarray(obj.affine), {})
    if isinstance(obj, np.ndarray):
        return _from_array(obj, spacing, affine, name)
    raise MedaiError(f"{name}: cannot view {type(obj).__name__} (expected a Volume, array, "
                     "nibabel/SimpleITK image, MetaTensor or a NIfTI/DICOM path)")  # fmt: skip


def _from_array(array: np.ndarray, spacing: Any, affine: Any, name: str) -> Volume:
    array = _squeeze(np.asarray(array), name)
    if affine is not None:
        return Volume(array, np.asarray(affine, dtype=np.float64), {})
    if spacing is None:
        warnings.warn(
            f"{name}: a bare array has no geometry; showing it as RAS+ with 1 mm voxels "
            "(pass affine= or spacing=)",
            stacklevel=3,
        )
        spacing = (1.0, 1.0, 1.0)
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    return Volume(array, np.diag([*sp, 1.0]), {})


def _from_path(path: Path, name: str) -> Volume:
    if not path.exists():
        raise MedaiError(f"{name}: no such file or folder: {path}")
    if path.is_dir():
        from medai_lab.io.loader import load_series

        return load_series(path)
    if path.name.lower().endswith(_NIFTI_SUFFIXES):
        from medai_lab.io.nifti import load_nifti

        return load_nifti(path)
    if path.suffix.lower() in (".dcm", "") or _is_dicom(path):
        from medai_lab.io.loader import load_series

        return load_series([path])  # a single (multi-frame) DICOM file
    raise MedaiError(f"{name}: not a NIfTI file or DICOM folder: {path.name}")


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(132)[128:132] == b"DICM"


def _from_sitk(image: Any) -> Volume:
    import SimpleITK as sitk

    if image.GetDimension() != 3:
        raise MedaiError(f"SimpleITK image must be 3-D, got {image.GetDimension()}-D")
    # GetArrayFromImage is z-y-x; SimpleITK geometry is LPS.
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return Volume(array, _LPS_TO_RAS @ lps, {})


def _from_metatensor(tensor: Any, name: str) -> Volume:
    affine = np.asarray(tensor.affine.detach().cpu().numpy() if hasattr(tensor.affine, "detach")
                        else tensor.affine, dtype=np.float64)  # fmt: skip
    if affine.ndim == 3:  # a batch of one
        affine = affine[0]
    meta = getattr(tensor, "meta", {}) or {}
    # MONAI keeps affines in RAS+ unless LoadImage was told otherwise.
    if str(meta.get("space", "RAS")).upper() == "LPS":
        affine = _LPS_TO_RAS @ affine
    array = _squeeze(tensor.detach().cpu().numpy(), name)
    return Volume(array, affine, {})


def _squeeze(array: np.ndarray, name: str) -> np.ndarray:
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise MedaiError(f"{name}: expected a 3-D image, got shape {tuple(array.shape)}")
    return array


def same_grid(image: Volume, other: Volume, name: str) -> Volume:
    """``other`` reoriented like ``image`` when both cover the same RAS+ grid (1e-3 mm)."""
    a, b = image.to_ras(), other.to_ras()
    if b.shape != a.shape or not np.allclose(a.affine, b.affine, atol=1e-3):
        raise MedaiError(
            f"{name} is not on the image grid: shape {other.shape} vs {image.shape}, "
            f"orientation {other.orientation} vs {image.orientation} "
            "(resample it to the image first)"
        )
    return b

"""NIfTI read/write with atomic writes (a temp name in the same folder, then rename)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medai_lab.atomic import atomic_path
from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume


def save_nifti(volume: Volume, path: str | os.PathLike[str], *, compresslevel: int = 1) -> Path:
    """Write ``volume`` to ``path`` (``.nii`` or ``.nii.gz``) with qform and sform set (scanner).

    ``.nii.gz`` is compressed in parallel gzip members (valid gzip, read by every NIfTI reader),
    so large volumes do not wait on one core. The file appears only when complete.
    """
    import nibabel as nib

    out = Path(path)
    name = out.name
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise MedaiError(f"NIfTI output must end with .nii or .nii.gz: {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    arr = volume.array
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    img = nib.Nifti1Image(arr, volume.affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(volume.affine, code=1)
    img.set_sform(volume.affine, code=1)
    tr = (volume.meta.get("acquisition") or {}).get("repetition_time")
    if arr.ndim == 4 and tr:
        img.header["pixdim"][4] = float(tr) / 1000.0  # seconds per volume, as dcm2niix writes
    descrip = volume.meta.get("description")
    if descrip:
        img.header["descrip"] = str(descrip)[:79].encode("ascii", "replace")
    with atomic_path(out) as tmp:
        raw = _nifti_bytes(img)
        if name.endswith(".gz"):
            from medai_lab.io.pgzip import write_gzip

            write_gzip(raw, tmp, compresslevel=compresslevel)
        else:
            with open(tmp, "wb") as fh:
                fh.write(raw)
    return out


def _nifti_bytes(img: object) -> memoryview:
    """Header + data of a single-file NIfTI-1 image, in memory (one copy of the voxels)."""
    import io

    import nibabel as nib

    assert isinstance(img, nib.Nifti1Image)
    buf = io.BytesIO()
    img.to_file_map({"image": nib.FileHolder(fileobj=buf), "header": nib.FileHolder(fileobj=buf)})
    return buf.getbuffer()


def load_nifti(path: str | os.PathLike[str]) -> Volume:
    """Read a NIfTI file as a :class:`Volume` (3-D or 4-D; scaling applied; ints stay ints)."""
    import nibabel as nib

    p = Path(path)
    if not p.is_file():
        raise MedaiError(f"no such NIfTI file: {p}")
    try:
        img = nib.load(str(p))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise MedaiError(f"cannot read NIfTI {p.name}: {exc}") from exc
    if len(img.shape) not in (3, 4) or (len(img.shape) == 4 and 0 in img.shape):
        raise MedaiError(f"{p.name} is {len(img.shape)}-D; Volume holds 3-D or 4-D images")
    slope, inter = img.dataobj.slope, img.dataobj.inter
    unscaled = (slope in (1.0, None) or np.isnan(slope)) and (
        inter in (0.0, None) or np.isnan(inter)
    )
    arr = np.asanyarray(img.dataobj) if unscaled else img.get_fdata(dtype=np.float32)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr.reshape(arr.shape[:3])  # a 3-D image stored with a unit 4th axis
    affine = img.affine if img.affine is not None else np.eye(4)
    return Volume(np.asarray(arr), affine, {"source": "nifti"})

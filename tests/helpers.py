"""Small synthetic volumes with known geometry, written as DICOM by our writer."""

from __future__ import annotations

import numpy as np
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from medai_lab.io import Volume


def axial_volume(shape=(40, 32, 12), spacing=(0.7, 0.9, 2.5), seed=0, half_steps=False) -> Volume:
    """An LPS-stored axial CT-like volume with distinct values everywhere (any flip shows)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 2000, size=shape).astype(np.int16)
    if half_steps:
        arr = arr.astype(np.float32) * 0.5
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [12.5, -30.25, -100.0]
    return Volume(arr, affine)


def reoriented(vol: Volume, codes: str) -> Volume:
    """The same image stored with axes pointing to ``codes`` (e.g. "PIL" = sagittal)."""
    t = ornt_transform(io_orientation(vol.affine), axcodes2ornt(tuple(codes)))
    arr = apply_orientation(vol.array, t)
    return Volume(np.ascontiguousarray(arr), vol.affine @ inv_ornt_aff(t, vol.array.shape))


def rotated(vol: Volume, degrees: float, axis: int = 0) -> Volume:
    """An oblique acquisition: the grid rotated about a world axis through the origin."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(4)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return Volume(vol.array, rot @ vol.affine)


def part10_bytes(ds, syntax: str = "1.2.840.10008.1.2.1", **meta: str) -> bytes:
    """``ds`` as a Part 10 file in memory, its file meta filled in from the dataset."""
    import io

    import pydicom
    from pydicom.dataset import FileMetaDataset

    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = ds.SOPClassUID
    fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    fm.TransferSyntaxUID = syntax
    for name, value in meta.items():
        setattr(fm, name, value)
    ds.file_meta = fm
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True, implicit_vr=syntax == "1.2.840.10008.1.2")
    return buf.getvalue()


def trigger_axis(values: list[float]) -> dict:
    """The ``axis4`` meta of a cardiac-phase series with these trigger times (ms)."""
    return {"name": "phase", "attribute": "trigger_time", "unit": "ms", "size": len(values),
            "values": values}  # fmt: skip


def write_fourd_liver(root, times, shape, spacing):
    """An MSD folder of 4-D liver phantoms, one case per entry of ``times`` (trigger times):
    frame t brightens the liver by t HU. Returns ``root``."""
    import json

    from medai_lab.datasets import make_phantom
    from medai_lab.io import save_nifti
    from medai_lab.io.sidecar import write_companions

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for i, case_times in enumerate(times):
        image, label = make_phantom("liver", i, shape, spacing)
        liver = label.array > 0  # the body outline (what cropping sees) is the same in every frame
        frames = [np.where(liver, image.array + int(t), image.array) for t in case_times]
        meta = {"axis4": trigger_axis(case_times)}
        vol = Volume(np.stack(frames, axis=-1).astype(np.int16), image.affine, meta)
        name = f"liver_{i:03d}.nii.gz"
        save_nifti(vol, root / "imagesTr" / name)
        write_companions(vol, root / "imagesTr" / name)
        save_nifti(label, root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    info = {"labels": {"0": "background", "1": "liver", "2": "tumour"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(info))
    return root

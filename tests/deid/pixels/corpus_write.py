"""Writing corpus images in a chosen transfer syntax (pydicom encoders, Pillow for lossy JPEG
baseline, dcmtk's dcmcjpeg for JPEG lossless when it is installed)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)


def write(ds0, arr: np.ndarray, pi: str, syntax: str, path: Path) -> str | None:
    """Write ``arr`` with ``ds0``'s header in ``syntax``; returns the syntax, or None if no
    encoder (JPEG lossless needs dcmtk's dcmcjpeg)."""
    ds = copy.deepcopy(ds0)
    ds.pop("LossyImageCompression", None)
    single = arr[0] if "NumberOfFrames" not in ds else arr
    bits = int(ds.BitsStored)
    ds.set_pixel_data(single, pi, bits, generate_instance_uid=False)
    if pi == "PALETTE COLOR":
        ds.PhotometricInterpretation = "PALETTE COLOR"
    if syntax == "YBR_FULL_422":
        ybr = convert_color_space(arr, "RGB", "YBR_FULL")
        pairs = np.stack(
            [ybr[..., 0::2, 0], ybr[..., 1::2, 0], ybr[..., 0::2, 1], ybr[..., 0::2, 2]], -1
        )
        ds.PixelData = np.ascontiguousarray(pairs).tobytes()
        ds.PhotometricInterpretation = "YBR_FULL_422"
        syntax = ExplicitVRLittleEndian
    elif syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        ds.compress(syntax, generate_instance_uid=False)
    elif syntax == JPEGBaseline8Bit:
        return _jpeg_baseline(ds0, arr, pi, path)
    elif syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax == ExplicitVRBigEndian:  # pydicom writes pixel bytes as given: swap them first
        ds.PixelData = single.astype(single.dtype.newbyteorder(">")).tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
        pydicom.dcmwrite(path, ds, little_endian=False, implicit_vr=False, force_encoding=True)
        return str(syntax)
    ds.save_as(path, enforce_file_format=True)
    if syntax == JPEGLosslessSV1:
        exe = shutil.which("dcmcjpeg")
        if exe is None:
            return None
        tmp = path.with_suffix(".jpg.dcm")
        subprocess.run([exe, "+e1", str(path), str(tmp)], check=True, capture_output=True)
        tmp.replace(path)
    return str(syntax)


def _jpeg_baseline(ds0, arr: np.ndarray, pi: str, path: Path) -> str:
    """Lossy JPEG baseline through Pillow (quality 90), encapsulated by pydicom."""
    from io import BytesIO

    from pydicom.encaps import encapsulate

    frames = []
    for f in range(arr.shape[0]):
        a = arr[f]
        if a.dtype != np.uint8:
            a = np.clip((a - a.min()) * (255.0 / max(1, a.max() - a.min())), 0, 255)
        buf = BytesIO()
        Image.fromarray(a.astype(np.uint8)).save(buf, format="JPEG", quality=90, subsampling=1)
        frames.append(buf.getvalue())
    ds = copy.deepcopy(ds0)
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "YBR_FULL_422" if arr.ndim == 4 else "MONOCHROME2"
    for tag in ("RescaleSlope", "RescaleIntercept", "SmallestImagePixelValue"):
        ds.pop(tag, None)
    ds.pop("LargestImagePixelValue", None)
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return str(JPEGBaseline8Bit)

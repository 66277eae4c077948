"""CT-like and ultrasound-like slices as Part 10 bytes, with text burned in by Pillow.

The text is drawn into the pixel values themselves (a big bright string), as scanners and
secondary captures do; the headers carry the same patient as the text.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
NAME, PID = "DOE^JOHN", "JD12345"


def _body(size: int, seed: int, air: float, tissue: float, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    c = (size - 1) / 2
    inside = ((x - c) / (0.42 * size)) ** 2 + ((y - c) / (0.32 * size)) ** 2 <= 1
    img = np.full((size, size), air, dtype=np.float32)
    img[inside] = tissue + rng.normal(0, spread, int(inside.sum()))
    return img


def burn_text(img: np.ndarray, text: str, value: float) -> tuple[int, int, int, int]:
    """Draw ``text`` into ``img`` (in place) at ``value``; its box (x0, y0, x1, y1)."""
    from PIL import Image, ImageDraw, ImageFont

    size = img.shape[0]
    mask = Image.new("L", (img.shape[1], size), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=max(12, size // 16))
    at = (size // 32, size // 32)
    draw.text(at, text, fill=255, font=font)
    drawn = np.asarray(mask) > 127
    img[drawn] = value
    ys, xs = np.nonzero(drawn)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def slice_bytes(
    *,
    text: str | None = None,
    modality: str = "CT",
    size: int = 512,
    seed: int = 0,
    burned_in: str | None = None,
    study: str = "study-1",
    name: str = NAME,
    pid: str = PID,
) -> bytes:
    """One slice as a Part 10 file (explicit VR little endian)."""
    ds = Dataset()
    if modality == "US":
        img = _body(size, seed, 0, 90, 25)
        if text:
            burn_text(img, text, 255)
        pixels = np.clip(img, 0, 255).astype(np.uint8)
        ds.SOPClassUID = US_IMAGE
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
    else:
        img = _body(size, seed, -1000, 40, 20)
        if text:
            burn_text(img, text, 2000)
        pixels = img.astype(np.int16)
        ds.SOPClassUID = CT_IMAGE
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.ImagePositionPatient = [0, 0, float(seed)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[study, modality, str(seed), text or ""])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[study])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[study, modality])
    ds.Modality = modality
    ds.PatientName, ds.PatientID = name, pid
    ds.StudyDate, ds.InstitutionName = "20240102", "St John Hospital"
    ds.InstanceNumber = seed + 1
    if burned_in:
        ds.BurnedInAnnotation = burned_in
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def text_box(size: int = 512, text: str = "DOE JOHN JD12345") -> tuple[int, int, int, int]:
    """Where :func:`slice_bytes` puts ``text`` on a ``size`` slice."""
    return burn_text(np.zeros((size, size), np.float32), text, 1)

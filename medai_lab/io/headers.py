"""One pass over a DICOM file's header: what grouping, geometry and pixel reading need.

Pixel data is never read here: large values are deferred, so only their file offset is kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from medai_lab.io.dims import classic_dims
from medai_lab.io.frameinfo import FrameGeometry, NotAnImage, opt_float
from medai_lab.io.multiframe import frame_geometries, siemens_mosaic
from medai_lab.io.syntax import ENCAPSULATED

__all__ = ["RAW_SYNTAXES", "FrameGeometry", "ImageHeader", "NotAnImage", "read_header"]

# Uncompressed syntaxes whose pixel bytes we read straight from the file at a known offset.
RAW_SYNTAXES = {
    "1.2.840.10008.1.2": "<",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1": "<",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2": ">",  # Explicit VR Big Endian (retired, still found in archives)
}
_PIXEL_DATA = 0x7FE00010
_DEFER = 512  # bytes: larger values (pixel data, CSA headers) are skipped, not read


@dataclass
class ImageHeader:
    """Header facts of one DICOM image file (one or many frames)."""

    path: Path
    transfer_syntax: str
    sop_class: str
    series_uid: str
    study_uid: str
    frame_of_reference: str
    modality: str
    series_number: str
    acquisition_number: str
    series_description: str
    rows: int
    columns: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    signed: bool
    float_pixels: bool
    frames: list[FrameGeometry] = field(default_factory=list)
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    pixel_offset: int | None = None  # byte offset of uncompressed pixel data, when known
    pixel_length: int | None = None
    encap_offset: int | None = None  # byte offset of encapsulated (compressed) pixel items
    manufacturer: str = ""
    mosaic_tiles: int = 0  # Siemens mosaic: tiles per side of the stored image (0 = none)

    @property
    def stored_shape(self) -> tuple[int, int]:
        """(rows, columns) of the stored image: a mosaic holds many tiles of (rows, columns)."""
        t = self.mosaic_tiles or 1
        return self.rows * t, self.columns * t

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def raw_readable(self) -> bool:
        """Whether pixel bytes can be read directly from the file (no decoder needed)."""
        return (
            self.transfer_syntax in RAW_SYNTAXES
            and self.pixel_offset is not None
            and self.bits_allocated in (8, 16, 32)
            and self.samples == 1
            and not self.float_pixels
            and not self.mosaic_tiles
        )

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples * self.bits_allocated // 8

    @property
    def stored_bytes(self) -> int:
        """Bytes of pixel data the header promises."""
        rows, cols = self.stored_shape
        frames = 1 if self.mosaic_tiles else self.n_frames
        return rows * cols * frames * self.samples * self.bits_allocated // 8


def read_header(path: Path) -> ImageHeader:
    """Parse ``path`` without reading its pixel data.

    Raises
    ------
    NotAnImage
        With a short reason: not DICOM, no pixel data, colour, unreadable, etc.
    """
    fast = _from_fast(path)
    return fast if fast is not None else read_header_pydicom(path)


def read_header_pydicom(path: Path) -> ImageHeader:
    """The full-parse path of :func:`read_header` (every case the fast reader declines)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        try:
            ds = pydicom.dcmread(path, defer_size=_DEFER)
        except InvalidDicomError:
            # DICOM without the 128-byte preamble still starts with a group 0008 element.
            with open(path, "rb") as fh:
                head = fh.read(4)
            if head[:2] not in (b"\x08\x00", b"\x02\x00"):
                raise NotAnImage("not a DICOM file") from None
            ds = pydicom.dcmread(path, defer_size=_DEFER, force=True)
    except NotAnImage:
        raise
    except PermissionError:
        raise NotAnImage("permission denied") from None
    except IsADirectoryError:
        raise NotAnImage("is a directory") from None
    except OSError as exc:
        raise NotAnImage(f"cannot read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:  # pydicom raises many types on corrupt files
        raise NotAnImage(
            f"corrupt or truncated DICOM ({type(exc).__name__})", corrupt=True
        ) from None
    try:
        return _extract(path, ds)
    except NotAnImage:
        raise
    except Exception as exc:
        raise NotAnImage(
            f"corrupt or truncated DICOM ({type(exc).__name__})", corrupt=True
        ) from None


def _text(ds: object, keyword: str) -> str:
    value = getattr(ds, keyword, None)
    return "" if value is None else str(value).strip()


def _extract(path: Path, ds: object) -> ImageHeader:
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    if len(ds) == 0:  # type: ignore[arg-type]
        raise NotAnImage("no data elements after the file meta (truncated?)", corrupt=True)
    if _PIXEL_DATA not in ds and 0x7FE00008 not in ds and 0x7FE00009 not in ds:  # type: ignore[operator]
        # pydicom stops quietly at end of file: an image module without pixels is a cut file.
        sop_name = str(getattr(getattr(ds, "SOPClassUID", None), "name", ""))
        if "Rows" in ds or "Columns" in ds or "Image Storage" in sop_name:  # type: ignore[operator]
            raise NotAnImage("image without pixel data (truncated?)", corrupt=True)
        raise NotAnImage("no pixel data")
    rows, cols = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
    if not rows or not cols:
        raise NotAnImage("no image size (Rows/Columns)")
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    photometric = _text(ds, "PhotometricInterpretation") or "MONOCHROME2"
    if samples != 1 or not photometric.startswith("MONOCHROME"):
        raise NotAnImage(f"colour image ({photometric}); volumes are greyscale")
    header = ImageHeader(
        path=path,
        transfer_syntax=syntax,
        sop_class=_text(ds, "SOPClassUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        frame_of_reference=_text(ds, "FrameOfReferenceUID"),
        modality=_text(ds, "Modality"),
        series_number=_text(ds, "SeriesNumber"),
        acquisition_number=_text(ds, "AcquisitionNumber"),
        series_description=_text(ds, "SeriesDescription"),
        rows=rows,
        columns=cols,
        samples=samples,
        photometric=photometric,
        bits_allocated=int(getattr(ds, "BitsAllocated", 16) or 16),
        bits_stored=int(getattr(ds, "BitsStored", 0) or getattr(ds, "BitsAllocated", 16) or 16),
        signed=int(getattr(ds, "PixelRepresentation", 0) or 0) == 1,
        float_pixels=_PIXEL_DATA not in ds,  # type: ignore[operator]
        slice_thickness=opt_float(getattr(ds, "SliceThickness", None)),
        spacing_between_slices=opt_float(getattr(ds, "SpacingBetweenSlices", None)),
        manufacturer=_text(ds, "Manufacturer"),
    )
    header.frames = frame_geometries(ds, header)
    siemens_mosaic(ds, header)
    if syntax in RAW_SYNTAXES:
        raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)  # type: ignore[attr-defined]
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is not None and length not in (None, 0xFFFFFFFF):
            header.pixel_offset, header.pixel_length = int(tell), int(length)
    elif syntax in ENCAPSULATED:
        raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)  # type: ignore[attr-defined]
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", None)
        if tell is not None and length == 0xFFFFFFFF:
            header.encap_offset = int(tell)  # where the items start: frames decoded directly
    if header.pixel_length is not None and header.pixel_length < header.stored_bytes:
        raise NotAnImage("pixel data shorter than Rows x Columns x frames", corrupt=True)
    if header.pixel_offset is not None:
        size = os.path.getsize(path)
        if header.pixel_offset + header.stored_bytes > size:
            raise NotAnImage("truncated file: pixel data ends early", corrupt=True)
    return header


_REQUIRED = ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


def _from_fast(path: Path) -> ImageHeader | None:
    """The header from :mod:`fastheader`, or ``None`` when pydicom must decide."""
    from medai_lab.io.fastheader import read_fast

    res = read_fast(path)
    if res is None:
        return None
    f, syntax, offset, length, file_size = res
    ipp, iop, ps = (
        f.get("ImagePositionPatient"),
        f.get("ImageOrientationPatient"),
        f.get("PixelSpacing"),
    )
    if (
        any(f.get(k) is None for k in _REQUIRED)
        or str(f.get("NumberOfFrames") or "1").strip() not in ("1", "")
        or "MOSAIC" in str(f.get("ImageType", "")).upper()
        or int(f.get("SamplesPerPixel") or 1) != 1
        or not str(f.get("PhotometricInterpretation") or "MONOCHROME2").startswith("MONOCHROME")
        or ipp.shape != (3,)
        or iop.shape != (6,)
        or ps.shape != (2,)  # type: ignore[union-attr]
    ):
        return None
    slope, inter = f.get("RescaleSlope"), f.get("RescaleIntercept")
    bits = int(f.get("BitsAllocated") or 16)  # type: ignore[call-overload]
    thick, between = f.get("SliceThickness"), f.get("SpacingBetweenSlices")
    header = ImageHeader(
        path=path,
        transfer_syntax=syntax,
        sop_class=str(f.get("SOPClassUID", "")),
        series_uid=str(f.get("SeriesInstanceUID", "")),
        study_uid=str(f.get("StudyInstanceUID", "")),
        frame_of_reference=str(f.get("FrameOfReferenceUID", "")),
        modality=str(f.get("Modality", "")),
        series_number=str(f.get("SeriesNumber", "")),
        acquisition_number=str(f.get("AcquisitionNumber", "")),
        series_description=str(f.get("SeriesDescription", "")),
        rows=int(f["Rows"]),  # type: ignore[call-overload]
        columns=int(f["Columns"]),  # type: ignore[call-overload]
        samples=1,
        photometric=str(f.get("PhotometricInterpretation") or "MONOCHROME2"),
        bits_allocated=bits,
        bits_stored=int(f.get("BitsStored") or bits),  # type: ignore[call-overload]
        signed=int(f.get("PixelRepresentation") or 0) == 1,  # type: ignore[call-overload]
        float_pixels=False,
        frames=[
            FrameGeometry(
                ipp,
                iop,
                (float(ps[0]), float(ps[1])),  # type: ignore[index]
                float(slope[0]) if slope is not None and len(slope) else 1.0,  # type: ignore[arg-type]
                float(inter[0]) if inter is not None and len(inter) else 0.0,  # type: ignore[arg-type]
                classic_dims(f),
            )
        ],
        slice_thickness=float(thick[0]) if thick is not None and len(thick) else None,  # type: ignore[arg-type]
        spacing_between_slices=float(between[0]) if between is not None and len(between) else None,  # type: ignore[arg-type]
        manufacturer=str(f.get("Manufacturer", "")),
    )
    if offset >= 0 and length < 0:
        header.encap_offset = offset
    elif offset >= 0:
        header.pixel_offset, header.pixel_length = offset, length
        if length < header.stored_bytes:
            raise NotAnImage("pixel data shorter than Rows x Columns x frames", corrupt=True)
        if offset + header.stored_bytes > file_size:
            raise NotAnImage("truncated file: pixel data ends early", corrupt=True)
    return header

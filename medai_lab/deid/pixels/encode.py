"""Write redacted pixels back in the file's own transfer syntax when that is lossless, and
record the Clean Pixel Data Option in the header."""

from __future__ import annotations

import io

import numpy as np

EXPLICIT_LE = "1.2.840.10008.1.2.1"
UNCOMPRESSED = frozenset(
    {"1.2.840.10008.1.2", EXPLICIT_LE, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)
# lossless syntaxes that pydicom can encode (if the plugin is installed)
ENCODABLE = frozenset(
    {
        "1.2.840.10008.1.2.5",  # RLE Lossless
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    }
)
# lossless, but no encoder here: written as Explicit VR Little Endian instead
LOSSLESS_OTHER = frozenset(
    {
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless, process 14
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless, process 14, selection value 1
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    }
)
CLEAN_PIXEL_CODE = ("113101", "DCM", "Clean Pixel Data Option")


def is_lossless(syntax: str) -> bool:
    """Whether pixels in ``syntax`` can be rewritten without new loss (else: lossy or unknown)."""
    return syntax in UNCOMPRESSED or syntax in ENCODABLE or syntax in LOSSLESS_OTHER


def target_syntax(syntax: str) -> str:
    """The syntax redacted pixels are written in: the original when an encoder is here."""
    if syntax in UNCOMPRESSED:
        return syntax
    if syntax in ENCODABLE:
        from pydicom.pixels import get_encoder

        if get_encoder(syntax).is_available:
            return syntax
    return EXPLICIT_LE


def mark_clean(ds) -> bool:
    """BurnedInAnnotation NO and the Clean Pixel Data Option code (existing items kept).
    Returns whether anything changed."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    changed = str(ds.get("BurnedInAnnotation", "")).upper() != "NO"
    ds.BurnedInAnnotation = "NO"
    seq = ds.get("DeidentificationMethodCodeSequence")
    if seq is None:
        ds.DeidentificationMethodCodeSequence = seq = Sequence()
    if not any(
        str(i.get("CodeValue", "")) == CLEAN_PIXEL_CODE[0]
        and str(i.get("CodingSchemeDesignator", "")) == CLEAN_PIXEL_CODE[1]
        for i in seq
    ):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = CLEAN_PIXEL_CODE
        seq.append(item)
        changed = True
    return changed


def to_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _native(ds, arr: np.ndarray, photometric: str, big_endian: bool) -> bytes:
    """Uncompressed pixel data bytes laid out as ``ds`` declares them."""
    from pydicom.pixels import pack_bits

    bits = int(ds.BitsAllocated)
    if bits == 1:
        return pack_bits(arr.reshape(-1))
    if photometric == "YBR_FULL_422":  # Y0 Y1 Cb Cr per pixel pair (chroma from the even one)
        y, cb, cr = arr[..., 0], arr[..., 1], arr[..., 2]
        pairs = np.stack([y[..., 0::2], y[..., 1::2], cb[..., 0::2], cr[..., 0::2]], axis=-1)
        arr = pairs
    kind = "i" if int(ds.get("PixelRepresentation", 0)) else "u"
    dtype = np.dtype(f"{'>' if big_endian else '<'}{kind}{bits // 8}")
    if int(ds.get("PlanarConfiguration", 0)) == 1 and arr.ndim == 4:
        arr = arr.transpose(0, 3, 1, 2)
    data = np.ascontiguousarray(arr).astype(dtype, copy=False).tobytes()
    return data + b"\x00" * (len(data) % 2)


def write_pixels(ds, arr: np.ndarray, photometric: str) -> str:
    """Put ``arr`` (frames, rows, cols[, samples]) into ``ds``; returns the syntax used."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    target = target_syntax(syntax)
    frames = int(ds.get("NumberOfFrames") or 1)
    single = arr[0] if frames == 1 and "NumberOfFrames" not in ds else arr
    if target == syntax and syntax in UNCOMPRESSED:
        ds.PixelData = _native(ds, arr, photometric, syntax == "1.2.840.10008.1.2.2")
        return syntax
    if photometric != str(ds.PhotometricInterpretation):
        ds.PhotometricInterpretation = photometric  # e.g. JPEG 2000 YBR_RCT decoded to RGB
    if target == syntax:
        ds.compress(syntax, single, generate_instance_uid=False)
        return syntax
    bits = int(ds.BitsStored)
    ds.set_pixel_data(single, photometric, bits, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
    return EXPLICIT_LE

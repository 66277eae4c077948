"""Decoded pixel data in two forms: stored values (what redaction edits) and 8-bit views (what
the text detector reads).

Redaction works on the values as the file stores them (after decompression, before any
rescale, VOI or colour conversion), so pixels outside the filled boxes can be written back
bit for bit. The detector gets one 8-bit RGB view per frame, windowed so that text drawn at
the highest or lowest stored value (how scanners burn in annotations) stays at full contrast.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

_J2K = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91")


@dataclass
class Pixels:
    """All frames of one image: ``stored`` is (frames, rows, cols) or (frames, rows, cols, 3)."""

    stored: np.ndarray
    photometric: str  # the colour space of ``stored`` (J2K YBR_RCT/ICT decodes to RGB)
    palette: np.ndarray | None = None  # (entries, 3) uint8 for PALETTE COLOR

    @property
    def frames(self) -> int:
        return int(self.stored.shape[0])

    def black(self, frame: int) -> np.ndarray | int:
        """The fill value: the darkest value as displayed, in the stored domain."""
        arr = self.stored[frame]
        pi = self.photometric
        if pi == "MONOCHROME1":
            return arr.max().item()
        if pi == "MONOCHROME2":
            return arr.min().item()
        if pi == "PALETTE COLOR" and self.palette is not None:
            return int(np.argmin(self.palette.astype(np.int32).sum(axis=1)))
        if pi.startswith("YBR_FULL"):
            mid = 1 << (arr.dtype.itemsize * 8 - 1)
            return np.array([0, mid, mid], dtype=arr.dtype)
        return np.zeros(arr.shape[-1], dtype=arr.dtype) if arr.ndim == 3 else arr.min().item()


def decode(part10: bytes, ds) -> Pixels:
    """Every frame of ``ds`` (read from ``part10``) in the stored domain."""
    from pydicom.pixels import pixel_array

    arr = pixel_array(io.BytesIO(part10), raw=True)
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    shape = (frames, int(ds.Rows), int(ds.Columns)) + ((samples,) if samples > 1 else ())
    arr = arr.reshape(shape)
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if pi in ("YBR_RCT", "YBR_ICT") and ds.file_meta.TransferSyntaxUID in _J2K:
        pi = "RGB"  # the JPEG 2000 decoder applies the inverse component transform
    palette = _palette(ds) if pi == "PALETTE COLOR" else None
    return Pixels(arr, pi, palette)


def _palette(ds) -> np.ndarray:
    """The palette as (entries, 3) uint8, indexed by stored value minus the first mapped value."""
    from pydicom.pixels import apply_color_lut

    desc = ds.RedPaletteColorLookupTableDescriptor
    entries = int(desc[0]) or 65536
    first = int(desc[1])
    index = np.arange(first, first + entries)
    index = index.astype(np.uint16 if int(ds.BitsAllocated) > 8 else np.uint8)
    lut = apply_color_lut(index, ds).astype(np.float64)
    top = 255.0 if lut.max() <= 255 else 65535.0
    rgb = np.clip(np.round(lut / top * 255.0), 0, 255).astype(np.uint8)
    if first:  # so that palette[stored] works for every stored value below ``first`` too
        rgb = np.concatenate([np.repeat(rgb[:1], first, axis=0), rgb])
    return rgb


def view(px: Pixels, frame: int) -> np.ndarray:
    """One frame as 8-bit RGB (rows, cols, 3) for the text detector."""
    arr = px.stored[frame]
    pi = px.photometric
    if pi == "PALETTE COLOR" and px.palette is not None:
        return px.palette[np.clip(arr, 0, len(px.palette) - 1)]
    if arr.ndim == 3:
        if pi.startswith("YBR_FULL"):
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, "YBR_FULL", "RGB")
        return _to8(arr, per_image=False)
    return _grey3(_to8(arr, per_image=True))  # no copy: channel stride 0


def _to8(arr: np.ndarray, *, per_image: bool) -> np.ndarray:
    """Scale to 0..255. Monochrome: a robust window (0.5-99.5 %) onto 24..224 so anatomy keeps
    its contrast, and the frame's own minimum and maximum pinned to 0 and 255: burned-in text
    sits there, and keeps a visible step even over saturated bone or air."""
    if not per_image:  # colour
        if arr.dtype == np.uint8:
            return arr
        top = max(float(arr.max()), 1.0)
        return np.clip(arr.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    vmin, vmax = arr.min(), arr.max()
    sample = arr[::4, ::4]
    inner = sample[(sample > vmin) & (sample < vmax)]  # text at the extremes must not set it
    lo, hi = np.percentile(inner if inner.size >= 64 else sample, (0.5, 99.5))
    if hi - lo < 1:
        lo, hi = float(vmin), max(float(vmax), float(vmin) + 1)
    out = (arr.astype(np.float32) - np.float32(lo)) * np.float32(200.0 / (hi - lo)) + 24
    out = np.clip(out, 24, 224).astype(np.uint8)
    out[arr == vmax] = 255
    out[arr == vmin] = 0
    return out


def second_looks(px: Pixels, frame: int, base: np.ndarray) -> list[np.ndarray]:
    """Other 8-bit views of one frame, for text that the windowed ``base`` view hides.

    Monochrome: the stored values equalised (rank order onto 0..255), so dim text on a dark
    background keeps a step even when bright anti-aliased text or metal stretches the window.
    Colour: the chroma (channel max minus min), where coloured lettering stands out from a
    grey image, and the green channel: the colours scanners draw text in (white, yellow,
    green, cyan) all carry full green, while colour Doppler (red, orange, blue) does not.
    """
    if base.strides[2] != 0:  # colour view
        chroma = base.max(axis=2) - base.min(axis=2)
        return [_grey3(chroma), _grey3(np.ascontiguousarray(base[..., 1]))]
    return [_grey3(equalised(px.stored[frame]))]


def equalised(arr: np.ndarray) -> np.ndarray:
    """Histogram equalisation of integer stored values onto 0..255 (uint8)."""
    lo = int(arr.min())
    shifted = (arr.astype(np.int64) - lo).ravel()
    cdf = np.cumsum(np.bincount(shifted))
    span = max(int(cdf[-1] - cdf[0]), 1)
    lut = np.clip((cdf - cdf[0]) * (255.0 / span), 0, 255).astype(np.uint8)
    return lut[shifted].reshape(arr.shape)


def _grey3(gray: np.ndarray) -> np.ndarray:
    return np.broadcast_to(gray[..., None], (*gray.shape, 3))

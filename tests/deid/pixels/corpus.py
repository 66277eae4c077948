"""A burned-in text corpus: real DICOM images with synthetic identifiers drawn into the pixels.

Backgrounds are real files (pydicom's and pydicom-data's test images, the JPEG 2000 CT series
and the MR in nine transfer syntaxes from ../shared/data). Names, IDs, dates and institutions
are rendered with Pillow (DejaVu fonts and Pillow's bitmap font, 8 to 28 px, light-on-dark,
dark-on-light, mid-grey, in corners, bands and over anatomy) and their ink boxes kept as ground
truth. Text-free images (plain, grid lines, rulers, a scale bar, markers) measure false
redaction. Everything is deterministic for a given seed. Nothing here uses the code under test.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from corpus_write import write
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
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

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans", "DejaVuSansMono", "DejaVuSerif", "DejaVuSans-Bold", "DejaVuSansCondensed")
LAST = ("MUELLER", "NGUYEN", "OKAFOR", "SILVA", "KOWALSKI", "JOHANSSON", "ROSSI", "TANAKA")
FIRST = ("ANNA", "PETER", "AMARA", "JOAO", "EWA", "LARS", "GIULIA", "KENJI")
SITES = (
    "ST MARY HOSPITAL",
    "Klinikum Nord",
    "CITY MED CTR",
    "Clinique du Lac",
    "RIVERSIDE IMAGING",
)


@dataclass
class Text:
    string: str
    box: tuple[int, int, int, int]  # ink box x0, y0, x1, y1 (exclusive)
    frames: tuple[int, ...] | None = None  # None: on every frame

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class Item:
    path: Path
    name: str  # background + variant, no identifiers
    syntax: str
    texts: list[Text] = field(default_factory=list)
    lossy: bool = False

    @property
    def text_free(self) -> bool:
        return not self.texts


# ---- backgrounds: (dataset, stored array (frames, rows, cols[, 3]), photometric) ---------------
def _read(path) -> tuple[pydicom.Dataset, np.ndarray, str]:
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array  # colour comes back as RGB
    pi = str(ds.PhotometricInterpretation)
    if pi.startswith("YBR") or ds.get("SamplesPerPixel", 1) == 3:
        pi = "RGB"
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    shape = (frames, int(ds.Rows), int(ds.Columns)) + ((samples,) if samples > 1 else ())
    arr = arr.reshape(shape)
    return ds, arr, pi


def backgrounds(shared: Path | None) -> dict[str, tuple]:
    """Name -> (dataset, stored frames, photometric); missing sources are left out."""
    out: dict[str, tuple] = {}
    for name, file in (
        ("ct_small", "CT_small.dcm"),
        ("mr_small", "MR_small.dcm"),
        ("us_rgb", "US1_UNCR.dcm"),
        ("us_palette", "OBXXXX1A.dcm"),
        ("sc_rgb", "SC_rgb.dcm"),
        ("emri", "emri_small.dcm"),
        ("us_mono", "JPGLosslessP14SV1_1s_1f_8b.dcm"),
    ):
        path = get_testdata_file(file)
        if path is not None:
            out[name] = _read(path)
    if shared is not None and (shared / "README.md").is_file():
        cts = sorted((shared / "ct_series_basel" / "dicom").iterdir())
        for i in (3, 10, 16):
            out[f"ct_basel_{i}"] = _read(cts[i])
        out["mr_ts"] = _read(shared / "transfer_syntaxes" / "In" / "1.dcm")
    if "us_rgb" in out:  # the real sector without the scanner's own text: a text-free US
        ds, arr, pi = out["us_rgb"]
        clean = np.zeros_like(arr)
        clean[:, 110:340, 50:590] = arr[:, 110:340, 50:590]
        ds = copy.deepcopy(ds)
        ds.Manufacturer = "SYNTHETIC"  # no vendor layout applies to this derived image
        out["us_sector"] = (ds, clean, pi)
    return out


# ---- strings and rendering --------------------------------------------------------------------
def identifier(rng: np.random.Generator) -> str:
    kind = rng.integers(6)
    if kind == 0:
        return f"{rng.choice(LAST)}^{rng.choice(FIRST)}"
    if kind == 1:
        return f"{rng.choice(LAST).title()}, {rng.choice(FIRST).title()}"
    if kind == 2:
        return f"ID {rng.integers(10**6, 10**9)}"
    if kind == 3:
        y, m, d = rng.integers(1950, 2025), rng.integers(1, 13), rng.integers(1, 29)
        return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}"])
    if kind == 4:
        return str(rng.choice(SITES))
    return f"ACC A{rng.integers(10**6, 10**7)}"


def font(rng: np.random.Generator, max_px: int):
    if rng.random() < 0.15:
        return ImageFont.load_default_imagefont()  # Pillow's bitmap font (about 11 px)
    size = int(rng.integers(8, max(9, min(28, max_px) + 1)))
    return ImageFont.truetype(str(FONT_DIR / f"{rng.choice(FONTS)}.ttf"), size)


def _ink(w: int, h: int, xy: tuple[int, int], s: str, fnt) -> np.ndarray:
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text(xy, s, font=fnt, fill=255)
    return np.asarray(mask, dtype=np.float32) / 255.0


def place(rng, w: int, h: int, s: str, fnt, taken: np.ndarray, where: str):
    """Ink alpha (h, w) and ink box for ``s`` at a free spot of kind ``where``, or None."""
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), s, font=fnt)
    tw, th = x1 - x0 + 2, y1 - y0 + 2
    if tw >= w - 4 or th >= h - 4:
        return None
    for _ in range(20):
        if where == "corner":
            x = int(rng.choice([2, w - tw - 2])) + int(rng.integers(0, 3))
            y = int(rng.choice([2, h - th - 2])) + int(rng.integers(-1, 2))
        elif where == "band":
            x = int(rng.integers(2, w - tw - 1))
            y = int(rng.choice([2, 3 + th, h - th - 2]))
        else:  # over anatomy
            x = int(rng.integers(w // 6, max(w // 6 + 1, w - tw - w // 6)))
            y = int(rng.integers(h // 4, max(h // 4 + 1, h - th - h // 4)))
        x, y = min(max(x, 1), w - tw - 1), min(max(y, 1), h - th - 1)
        alpha = _ink(w, h, (x - x0, y - y0), s, fnt)
        ys, xs = np.nonzero(alpha > 0.1)
        if len(xs) == 0:
            return None
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        pad = taken[max(0, box[1] - 4) : box[3] + 4, max(0, box[0] - 4) : box[2] + 4]
        if not pad.any():
            taken[box[1] : box[3], box[0] : box[2]] = True
            return alpha, box
    return None


def _levels(arr: np.ndarray, bits: int, signed: bool):
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = -(1 << (bits - 1)) if signed else 0
    return int(bottom), int(top)


def draw(rng, arr: np.ndarray, pi: str, ds, n_texts: int, frames: tuple[int, ...] | None):
    """Draw ``n_texts`` identifiers into ``arr`` (frames, rows, cols[, 3]) in place."""
    h, w = arr.shape[1:3]
    bits, signed = int(ds.BitsStored), bool(ds.get("PixelRepresentation", 0))
    bottom, top = _levels(arr, bits, signed)
    taken = np.zeros((h, w), bool)
    texts: list[Text] = []
    idx = list(range(arr.shape[0])) if frames is None else list(frames)
    for _ in range(n_texts):
        where = str(rng.choice(["corner", "band", "anatomy"], p=[0.4, 0.3, 0.3]))
        for _try in range(6):  # small images: retry with other strings and fonts
            s = str(identifier(rng))
            fnt = font(rng, max(8, h // 6))
            placed = place(rng, w, h, s, fnt, taken, where)
            if placed is not None:
                break
        if placed is None:
            continue
        alpha, box = placed
        style = rng.choice(["max", "frame_max", "min_on_light", "mid"], p=[0.4, 0.25, 0.2, 0.15])
        for f in idx:
            frame = arr[f].astype(np.float64)
            a = alpha[..., None] if frame.ndim == 3 else alpha
            if frame.ndim == 3:  # colour: white, yellow, green, cyan, or black on a light patch
                colours = ([255, 255, 255], [255, 255, 0], [0, 255, 0], [0, 255, 255])
                value = np.array(colours[rng.integers(len(colours))], float)
                if style == "min_on_light":
                    x0, y0, x1, y1 = box
                    frame[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = 230.0
                    value = np.zeros(3)
                elif style == "mid":
                    value = value * 0.7
            else:
                lo, hi = float(frame.min()), float(frame.max())
                if pi == "PALETTE COLOR":
                    value = _palette_white(ds)
                    a = (alpha > 0.5).astype(float)  # indices cannot be blended
                elif style == "max":
                    value = top
                elif style == "frame_max":
                    value = hi
                elif style == "mid":
                    value = lo + 0.7 * (hi - lo)
                else:
                    x0, y0, x1, y1 = box
                    frame[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = hi
                    value = lo if pi != "MONOCHROME1" else hi
                    if pi == "MONOCHROME1":
                        frame[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = lo
            out = frame * (1 - a) + value * a
            if f == idx[0] and not _visible(arr[f], out, alpha):
                break  # no contrast to what was there (white text on white): not a string
            arr[f] = np.clip(np.round(out), bottom, top).astype(arr.dtype)
        else:
            texts.append(Text(s, box, frames))
    return texts


def _visible(before: np.ndarray, after: np.ndarray, alpha: np.ndarray) -> bool:
    """Ink differs from what it covers by >= 10 % of the frame's 1-99 % range."""
    ink = alpha > 0.5
    lo, hi = np.percentile(before, (1, 99))
    step = np.abs(after[ink].astype(float) - before[ink].astype(float)).mean()
    return bool(step >= 0.1 * max(hi - lo, 1))


def _palette_white(ds) -> int:
    from pydicom.pixels import apply_color_lut

    n = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
    lut = apply_color_lut(np.arange(n, dtype=np.uint8 if n <= 256 else np.uint16), ds)
    return int(np.argmax(lut.astype(np.int64).sum(axis=1)))


def overlay(rng, arr: np.ndarray, ds, kind: str) -> None:
    """Text-free graphics at the maximum value: grid, ruler, scale bar, crosshair, circle."""
    h, w = arr.shape[1:3]
    value = np.iinfo(arr.dtype).max if arr.ndim == 4 else arr.max()
    for f in range(arr.shape[0]):
        a = arr[f]
        if kind == "grid":
            a[:: max(8, h // 12), :] = value
            a[:, :: max(8, w // 12)] = value
        elif kind == "ruler":
            y = h - max(10, h // 12)
            a[y, w // 8 : w - w // 8] = value
            for x in range(w // 8, w - w // 8, max(4, w // 40)):
                a[y - (6 if (x // max(4, w // 40)) % 5 == 0 else 3) : y, x] = value
        elif kind == "scalebar":
            a[h - 12 : h - 8, w - w // 4 : w - 8] = value
        elif kind == "crosshair":
            cy, cx = int(rng.integers(h // 3, 2 * h // 3)), int(rng.integers(w // 3, 2 * w // 3))
            a[cy, max(0, cx - 10) : cx + 11] = value
            a[max(0, cy - 10) : cy + 11, cx] = value
        elif kind == "circle":
            yy, xx = np.ogrid[:h, :w]
            r = np.hypot(yy - h / 2, xx - w / 2)
            a[np.abs(r - min(h, w) / 4) < 0.7] = value


def covered(box: tuple[int, int, int, int], regions) -> float:
    """Fraction of ``box`` inside the union of ``regions`` (x0, y0, x1, y1 boxes)."""
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for rx0, ry0, rx1, ry1 in regions:
        ax0, ay0, ax1, ay1 = max(x0, rx0), max(y0, ry0), min(x1, rx1), min(y1, ry1)
        if ax1 > ax0 and ay1 > ay0:
            mask[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] = True
    return float(mask.mean()) if mask.size else 1.0


# ---- the corpus -------------------------------------------------------------------------------
# real scanner files that carry their own burned-in text: never a text-free background
REAL_TEXT = ("us_rgb", "us_mono", "us_palette")
TEXT_FREE = ("plain", "grid", "ruler", "scalebar", "crosshair", "circle")
CI_RECIPES = (
    # (background, syntax, variant): variant "text", a TEXT_FREE kind, "mono1", "subset", "cine"
    ("ct_basel_10", ExplicitVRLittleEndian, "text"),
    ("ct_basel_3", JPEG2000Lossless, "text"),
    ("ct_basel_16", RLELossless, "text"),
    ("ct_basel_10", JPEGLSLossless, "text"),
    ("mr_ts", ExplicitVRLittleEndian, "text"),
    ("mr_ts", ImplicitVRLittleEndian, "text"),
    ("mr_ts", ExplicitVRBigEndian, "text"),
    ("mr_ts", JPEGLosslessSV1, "text"),
    ("mr_ts", ExplicitVRLittleEndian, "mono1"),
    ("ct_small", ExplicitVRLittleEndian, "text"),
    ("ct_small", RLELossless, "text"),
    ("mr_small", ExplicitVRLittleEndian, "text"),
    ("us_rgb", ExplicitVRLittleEndian, "text"),
    ("us_rgb", RLELossless, "text"),
    ("us_rgb", JPEG2000Lossless, "text"),
    ("us_rgb", "YBR_FULL_422", "text"),
    ("us_rgb", JPEGBaseline8Bit, "text"),
    ("us_sector", ExplicitVRLittleEndian, "text"),
    ("us_palette", ExplicitVRLittleEndian, "text"),
    ("sc_rgb", ExplicitVRLittleEndian, "text"),
    ("emri", ExplicitVRLittleEndian, "text"),
    ("emri", RLELossless, "subset"),
    ("emri", JPEG2000Lossless, "text"),
    ("us_sector", RLELossless, "cine"),
    ("ct_basel_3", ExplicitVRLittleEndian, "plain"),
    ("ct_basel_10", ExplicitVRLittleEndian, "grid"),
    ("ct_basel_16", JPEG2000Lossless, "ruler"),
    ("ct_basel_10", RLELossless, "scalebar"),
    ("ct_basel_3", ExplicitVRLittleEndian, "circle"),
    ("mr_ts", ExplicitVRLittleEndian, "plain"),
    ("mr_ts", JPEGLSLossless, "crosshair"),
    ("ct_small", ExplicitVRLittleEndian, "plain"),
    ("ct_small", ExplicitVRLittleEndian, "ruler"),
    ("mr_small", ExplicitVRLittleEndian, "plain"),
    ("emri", ExplicitVRLittleEndian, "plain"),
    ("us_sector", ExplicitVRLittleEndian, "plain"),
    ("us_sector", JPEGBaseline8Bit, "plain"),
    ("us_sector", ExplicitVRLittleEndian, "scalebar"),
)


def build(out: Path, recipes, shared: Path | None, seed: int = 0) -> list[Item]:
    """Write one file per recipe into ``out``; recipes whose source is missing are skipped."""
    bgs = backgrounds(shared)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for i, (bg, syntax, variant) in enumerate(recipes):
        if bg not in bgs:
            continue
        ds, arr0, pi = bgs[bg]
        arr = arr0.copy()
        ds = copy.deepcopy(ds)
        grey = arr.ndim == 3 and pi != "PALETTE COLOR"
        if variant == "mono1" and grey:
            top = (1 << int(ds.BitsStored)) - 1
            arr = (top - arr.astype(np.int64)).clip(0, top).astype(arr.dtype)
            pi = "MONOCHROME1"
        if variant == "cine":
            arr = _cine(rng, arr, 24)
            ds.NumberOfFrames = 24
        texts: list[Text] = []
        if variant in TEXT_FREE:
            if variant != "plain":
                overlay(rng, arr, ds, variant)
        else:
            frames = None
            if variant == "subset" and arr.shape[0] > 2:
                first = int(rng.integers(0, arr.shape[0] - 2))
                frames = (first, first + 1)
            texts = draw(rng, arr, pi, ds, int(rng.integers(1, 5)), frames)
            if not texts:
                continue
        path = out / f"{i:04d}_{bg}_{variant}.dcm"
        written = write(ds, arr, pi, syntax, path)
        if written is None:
            continue
        items.append(Item(path, f"{bg}/{variant}", written, texts, written == JPEGBaseline8Bit))
    return items


def _cine(rng, arr: np.ndarray, n: int) -> np.ndarray:
    """A loop of ``n`` frames: the first frame shifted a little each time (moving anatomy)."""
    frames = [
        np.roll(arr[0], (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), (0, 1))
        for _ in range(n)
    ]
    return np.stack(frames)

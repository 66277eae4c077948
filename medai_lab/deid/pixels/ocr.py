"""Offline text detectors: where is text, never what it says.

Two engines, both loaded once per process and run single-threaded (the de-identification
pipeline parallelises by process):

- ``rapidocr``: the PP-OCRv4 text *detection* network (DB, differentiable binarisation) shipped
  as ONNX inside the ``rapidocr-onnxruntime`` wheel, run with onnxruntime; its probability map
  is turned into axis-aligned boxes here. The wheel's recognition network then only judges
  whether a box holds characters (``textness``); what they say is never decoded.
- ``tesseract``: Tesseract 5's layout analysis (text lines) through ``tesserocr``, with the
  Debian ``tesseract-ocr-eng`` data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

DEFAULT = "rapidocr"
ENGINES = ("rapidocr", "tesseract")
_TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")
_HINT = "install the OCR extra: pip install 'medai-lab[ocr]'"
_cache: dict[str, object] = {}

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive), in image pixels


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


_MODELS = {"det": "ch_PP-OCRv4_det_infer.onnx", "rec": "ch_PP-OCRv4_rec_infer.onnx"}


def model_path(kind: str) -> Path:
    """The PP-OCRv4 ``det`` or ``rec`` network inside the rapidocr-onnxruntime wheel."""
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models" / _MODELS[kind]


def _det_model() -> Path:
    return model_path("det")


def _tessdata() -> str | None:
    for folder in (os.environ.get("TESSDATA_PREFIX", ""), *_TESSDATA):
        if folder and (Path(folder) / "eng.traineddata").is_file():
            return folder
    return None


def unavailable(engine: str = DEFAULT) -> str | None:
    """``None`` when ``engine`` can run here, else a one-line reason with the fix."""
    if engine == "rapidocr":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return f"OCR engine missing: onnxruntime is not installed ({_HINT})"
        try:
            if not all(model_path(k).is_file() for k in _MODELS):
                return f"OCR engine missing: the PP-OCRv4 models are not there ({_HINT})"
        except ImportError:
            return f"OCR engine missing: rapidocr-onnxruntime is not installed ({_HINT})"
        return None
    if engine == "tesseract":
        try:
            import tesserocr  # noqa: F401
        except ImportError:
            return f"OCR engine missing: tesserocr is not installed ({_HINT})"
        if _tessdata() is None:
            return "OCR engine missing: eng.traineddata not found (apt install tesseract-ocr-eng)"
        return None
    return f"unknown OCR engine {engine!r} (choose from {', '.join(ENGINES)})"


def describe(engine: str = DEFAULT) -> str:
    """Engine name and versions, for the audit trail."""
    if engine == "rapidocr":
        return (
            f"rapidocr-onnxruntime {_version('rapidocr-onnxruntime')} PP-OCRv4 det + rec check"
            f" (onnxruntime {_version('onnxruntime')})"
        )
    if engine == "tesseract":
        try:
            import tesserocr

            tess = tesserocr.tesseract_version().split()[1]
        except (ImportError, IndexError):
            tess = "?"
        return f"tesseract {tess} layout (tesserocr {_version('tesserocr')})"
    return engine


def _session():
    """The detection network, loaded on first use; one thread (processes give parallelism)."""
    if "rapidocr" not in _cache:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        _cache["rapidocr"] = ort.InferenceSession(
            str(_det_model()), opts, providers=["CPUExecutionProvider"]
        )
    return _cache["rapidocr"]


def _tesseract():
    if "tesseract" not in _cache:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # read when libtesseract starts
        import tesserocr

        _cache["tesseract"] = tesserocr.PyTessBaseAPI(
            path=_tessdata() or "", lang="eng", psm=tesserocr.PSM.SPARSE_TEXT
        )
    return _cache["tesseract"]


def _scale(h: int, w: int) -> float:
    """Small images are enlarged (8 px text needs room), huge ones reduced (time)."""
    side = max(h, w)
    if side < 512:
        return min(4.0, 512 / side)
    return min(1.0, 2048 / side)


def detect(rgb: np.ndarray, engine: str = DEFAULT, scale: float | None = None) -> list[Box]:
    """Text boxes in an 8-bit RGB image (rows, cols, 3); ``scale`` overrides the detector's
    resize factor (rapidocr)."""
    if engine == "rapidocr":
        return [c.box for c in candidates(rgb, scale=scale)]
    if engine == "tesseract":
        return _detect_tesseract(rgb)
    raise ValueError(unavailable(engine))


@dataclass(frozen=True)
class Candidate:
    """One region of the detector's probability map, in image pixels (unclipped, DB style)."""

    box: Box
    score: float  # mean text probability over the region

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


def candidates(
    rgb: np.ndarray, thresh: float = 0.3, box_thresh: float = 0.45, scale: float | None = None
) -> list[Candidate]:
    """Regions the PP-OCRv4 detector scores as text in an 8-bit RGB image (rows, cols, 3)."""
    from PIL import Image
    from scipy import ndimage

    h, w = rgb.shape[:2]
    s = _scale(h, w) if scale is None else scale
    nh, nw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
    img = rgb if (nh, nw) == (h, w) else np.asarray(Image.fromarray(rgb).resize((nw, nh)))
    x = img[..., ::-1].astype(np.float32) * np.float32(2 / 255) - 1  # BGR, (x - 0.5) / 0.5
    sess = _session()
    prob = sess.run(None, {sess.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0, 0]
    mask = ndimage.binary_dilation(prob > thresh, structure=np.ones((2, 2), bool))
    labels, n = ndimage.label(mask)
    if not n:
        return []
    scores = ndimage.mean(prob, labels, index=np.arange(1, n + 1))
    fy, fx = h / nh, w / nw
    out: list[Candidate] = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if scores[i] < box_thresh or min(bh, bw) < 3:
            continue
        grow = 1.6 * bh * bw / (2 * (bh + bw))  # DB's unclip: the net predicts shrunk regions
        box = (
            max(0, int((sl[1].start - grow) * fx)),
            max(0, int((sl[0].start - grow) * fy)),
            min(w, int(np.ceil((sl[1].stop + grow) * fx))),
            min(h, int(np.ceil((sl[0].stop + grow) * fy))),
        )
        out.append(Candidate(box, float(scores[i])))
    return out


def _detect_tesseract(rgb: np.ndarray) -> list[Box]:
    import tesserocr
    from PIL import Image

    h, w = rgb.shape[:2]
    s = max(2.0, _scale(h, w)) if max(h, w) <= 1024 else _scale(h, w)
    img = Image.fromarray(rgb).convert("L")
    img = img.resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR)
    api = _tesseract()
    api.SetImage(img)
    found = api.GetComponentImages(tesserocr.RIL.TEXTLINE, True) or []
    boxes: list[Box] = []
    for _, rect, _, _ in found:
        x0, y0 = int(rect["x"] / s), int(rect["y"] / s)
        x1 = int(np.ceil((rect["x"] + rect["w"]) / s))
        y1 = int(np.ceil((rect["y"] + rect["h"]) / s))
        boxes.append((max(0, x0), max(0, y0), min(w, x1), min(h, y1)))
    api.Clear()
    return boxes

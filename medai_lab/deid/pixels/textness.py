"""A recogniser's second opinion on a detected box: does it hold a row of characters?

The PP-OCRv4 recognition network (shipped in the same wheel as the detector) reads the box
crop; we keep only how many characters it hears and how sure it is, never which characters.
Scene-text detectors answer to organ outlines, Doppler speckle and ruler combs; a
recogniser asked to read those hears one or two characters with low confidence, while a name,
an ID or a date gives four or more with high confidence (benchmarks/bench_deid_pixels.py
measures both sides).
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]
HEIGHT = 48  # the network's input height
MAX_WIDTH = 1600
MIN_CHARS, MIN_SCORE = 4, 0.5  # a row of characters heard with some confidence ...
FEW_CHARS, SURE_SCORE = 2, 0.9  # ... or a short one heard with high confidence
_cache: dict[str, object] = {}


def _session():
    if "rec" not in _cache:
        import onnxruntime as ort

        from medai_lab.deid.pixels.ocr import model_path

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        _cache["rec"] = ort.InferenceSession(
            str(model_path("rec")), opts, providers=["CPUExecutionProvider"]
        )
    return _cache["rec"]


def characters(rgb: np.ndarray, box: Box) -> tuple[int, float]:
    """How many characters the recogniser hears in ``box`` of an 8-bit RGB image, and its
    mean confidence over them (CTC greedy decoding; the characters themselves are dropped)."""
    from PIL import Image

    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    h, w = crop.shape[:2]
    if h < 2 or w < 2:
        return 0, 0.0
    width = max(8, min(MAX_WIDTH, int(np.ceil(HEIGHT * w / h))))
    img = np.asarray(Image.fromarray(crop).resize((width, HEIGHT)), np.float32)
    x = img * np.float32(2 / 255) - 1  # (x / 255 - 0.5) / 0.5
    sess = _session()
    prob = sess.run(None, {sess.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0]
    best = prob.argmax(axis=1)
    heard = best != 0  # index 0 is CTC's blank
    if not heard.any():
        return 0, 0.0
    new = heard & np.r_[True, best[1:] != best[:-1]]  # CTC: repeats collapse
    return int(new.sum()), float(prob.max(axis=1)[heard].mean())


def is_text(rgb: np.ndarray, box: Box) -> bool:
    """True when the recogniser hears a row of characters in ``box``."""
    n, score = characters(rgb, box)
    return (n >= MIN_CHARS and score >= MIN_SCORE) or (n >= FEW_CHARS and score >= SURE_SCORE)

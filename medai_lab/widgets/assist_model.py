"""A trained template model as the viewer's assist model: ``(image_roi, clicks) -> mask``.

Whatever ``medai-lab export`` or ``medai-lab predict`` takes (a run folder, a ``.ckpt``, an
MLflow run id, a ``.ts`` / ``.onnx`` export with its JSON sidecar) is loaded once through
:meth:`medai_lab.inference.Predictor.load`; its :class:`~medai_lab.contract.ModelContract` says
the spacing, intensity transform and sliding window. A proposal for the region around a click:

1. the region is resampled from the image's spacing to the model's (trilinear),
2. the contract's intensity transform (:func:`medai_lab.datasets.transforms.intensity_transform`),
3. logits (:meth:`Predictor.logits`, CPU or the server's GPU; one window over the whole region
   by default), resampled back,
4. the label under the last click (the most likely foreground label there when the model calls
   it background), kept only in the connected pieces that hold a click (else its largest piece).

The model is not interactive: clicks pick the structure, they do not steer the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab.errors import MedaiError

__all__ = ["ModelAssist", "load_assist"]

_CACHE: dict[tuple[str, float, str | None], ModelAssist] = {}
_CACHE_LOCK = threading.Lock()


class ModelAssist:
    """A segmentation network applied to a region; call it as ``model(image_roi, clicks)``.

    Parameters
    ----------
    predictor
        A :class:`medai_lab.inference.Predictor` (network + contract + device).
    spacing
        Voxel size (mm) of the regions it will be given; None: the model's own spacing. The
        viewer passes the image's spacing per call (``spacing=`` of :meth:`__call__`).
    label
        Always propose this label value; None: the label under the click.
    window
        ``"region"``: the network sees the whole region at once (padded to a multiple of 32
        voxels; a 96^3 region is one pass instead of the 16 overlapping windows of a 64x64x32
        patch, 2-3x less work); ``"contract"``: the contract's sliding window, as validation.
    """

    def __init__(
        self, predictor: Any, spacing: Sequence[float] | None = None, label: int | None = None,
        window: str = "region",
    ) -> None:  # fmt: skip
        if window not in ("region", "contract"):
            raise MedaiError(f"window must be region or contract, got {window!r}")
        self.predictor = predictor
        self.contract = predictor.contract
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.label = label
        self.window = window
        self._intensity: Any = None
        self._lock = threading.Lock()  # one proposal at a time: the network is shared

    @classmethod
    def load(
        cls, source: str | os.PathLike[str], *, device: str | None = None,
        tracking_uri: str | None = None, **kwargs: Any,
    ) -> ModelAssist:  # fmt: skip
        """From a run folder, checkpoint, MLflow run id or ``.ts``/``.onnx`` export."""
        from medai_lab.inference import Predictor

        return cls(Predictor.load(source, tracking_uri=tracking_uri, device=device), **kwargs)

    def __call__(
        self, image_roi: np.ndarray, clicks: np.ndarray, spacing: Sequence[float] | None = None
    ) -> np.ndarray:
        """Boolean mask of ``image_roi``'s shape: the structure under the clicks."""
        roi = np.asarray(image_roi, dtype=np.float32)
        if roi.ndim != 3:
            raise MedaiError(f"the model takes a 3-D region, got shape {roi.shape}")
        pts = np.asarray(clicks, dtype=np.int64).reshape(-1, 3)
        given = spacing if spacing is not None else self.spacing or self.contract.spacing
        sx, sy, sz = (float(s) for s in given)
        with self._lock:
            logits = self._logits(roi, (sx, sy, sz))
        return _pick(logits, pts, self.label)

    def _logits(self, roi: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
        """``(C, X, Y, Z)`` logits on the region's own grid."""
        import torch
        import torch.nn.functional as F

        steps = zip(roi.shape, spacing, self.contract.spacing, strict=True)
        size = [max(1, round(n * s / t)) for n, s, t in steps]
        x = torch.from_numpy(np.ascontiguousarray(roi))[None, None]
        if list(roi.shape) != size:
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        x = self._normalise()({"image": x[0]})["image"][None]
        x = x.as_tensor() if hasattr(x, "as_tensor") else x
        if self.window == "region":  # our own Predictor: its window follows the region
            self.predictor.patch_size = [-(-n // 32) * 32 for n in size]
        out = self.predictor.logits(x.float())
        if list(out.shape[2:]) != list(roi.shape):
            out = F.interpolate(out, size=list(roi.shape), mode="trilinear", align_corners=False)
        return np.asarray(out[0].cpu().numpy())

    def _normalise(self) -> Any:
        if self._intensity is None:
            from medai_lab.datasets.transforms import intensity_transform

            self._intensity = intensity_transform({"intensity": self.contract.intensity.to_dict()})
        return self._intensity


def _pick(logits: np.ndarray, clicks: np.ndarray, label: int | None) -> np.ndarray:
    """The mask of one label: its connected pieces under the clicks, else its largest piece."""
    from scipy import ndimage as ndi

    pred = logits.argmax(axis=0)
    if label is None:
        if not len(clicks):
            return np.zeros(pred.shape, bool)
        at = tuple(clicks[-1])
        label = int(pred[at]) or int(np.argmax(logits[(slice(1, None), *at)])) + 1
    if not 0 < label < logits.shape[0]:
        raise MedaiError(f"the model has no label {label} (labels 1..{logits.shape[0] - 1})")
    pieces, n = ndi.label(pred == label)
    if n == 0:
        return np.zeros(pred.shape, bool)
    hit = {int(pieces[tuple(c)]) for c in clicks} - {0}
    if not hit:
        hit = {int(np.argmax(np.bincount(pieces.ravel())[1:])) + 1}
    return np.isin(pieces, list(hit))


def load_assist(source: str | os.PathLike[str], device: str | None = None) -> ModelAssist:
    """:meth:`ModelAssist.load`, kept while the file is unchanged (one load per model)."""
    path = Path(source)
    # A run folder changes where its checkpoints are rewritten (fine-tuning): look there too.
    parts = [path, *(path / "checkpoints").glob("*.ckpt"), *path.glob("*.ckpt")]
    stamp = max((p.stat().st_mtime for p in parts if p.exists()), default=0.0)
    key = (str(path.resolve()) if path.exists() else str(source), stamp, device)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
    if model is None:
        model = ModelAssist.load(source, device=device)
        with _CACHE_LOCK:
            _CACHE[key] = model
    return model

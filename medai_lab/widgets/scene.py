"""What a viewer shows, prepared in the kernel: RAS+ arrays, label table, metadata, levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medai_lab.io.volume import Volume
from medai_lab.widgets import transport
from medai_lab.widgets.labels import label_table

MAX_3D = 128  # voxels per axis of the 3D pane's label volume


@dataclass
class Scene:
    """An image (RAS+) with optional labels and prediction on its grid."""

    image: Volume
    labels: np.ndarray | None = None
    prediction: np.ndarray | None = None
    names: dict[int, str] = field(default_factory=dict)
    title: str = ""
    _levels: list[transport.Level] | None = field(default=None, repr=False)

    @property
    def table(self) -> list[dict[str, Any]]:
        present = [a for a in (self.labels, self.prediction) if a is not None]
        return label_table(present, self.names)

    def is_ct(self) -> bool:
        modality = str(self.image.meta.get("modality", "")).upper()
        if modality:
            return modality == "CT"
        arr = self.image.array
        return arr.dtype.kind in "iu" and arr.size > 0 and float(arr.min()) <= -500

    def percentiles(self) -> tuple[float, float]:
        arr = self.image.array
        step = max(1, round((arr.size / 2e6) ** (1 / 3)))  # about 2 M samples
        sample = np.asarray(arr[::step, ::step, ::step], dtype=np.float32)
        lo, hi = np.percentile(sample, [1, 99]) if sample.size else (0.0, 1.0)
        return float(lo), float(hi)

    def auto_window(self) -> tuple[str, tuple[float, float]]:
        """The preset and window to open on (one home: :mod:`medai_lab.widgets.autowindow`)."""
        from medai_lab.widgets.autowindow import choose_window

        return choose_window(self)

    def start_cursor(self) -> list[int]:
        """Through the centre of the labelled structures, else the volume centre."""
        for arr in (self.labels, self.prediction):
            if arr is not None and arr.any():
                idx = np.argwhere(arr[::2, ::2, ::2] > 0) * 2
                return [int(v) for v in np.median(idx, axis=0)]
        return [n // 2 for n in self.image.shape]

    def meta(self) -> dict[str, Any]:
        arr = self.image.array
        names = ["image"] + [
            n
            for n, a in (("labels", self.labels), ("prediction", self.prediction))
            if a is not None
        ]
        if len(names) > 1:
            names.append("labels3d")
        return {
            "shape": list(self.image.shape),
            "spacing": [round(s, 6) for s in self.image.spacing],
            "affine": np.round(self.image.affine, 6).tolist(),
            "dtype": transport.browser_dtype(arr).name,
            "range": [float(arr.min()), float(arr.max())] if arr.size else [0.0, 0.0],
            "percentiles": list(self.percentiles()),
            "modality": "CT" if self.is_ct() else str(self.image.meta.get("modality", "")),
            "volumes": names,
            "labels": self.table,
            "title": self.title,
        }

    def levels(self) -> list[transport.Level]:
        """Image preview (if any), then the overlays and the 3D labels, then the full image."""
        if self._levels is None:
            image = transport.levels("image", self.image.array)
            out = image[:-1]
            for name, arr in (("labels", self.labels), ("prediction", self.prediction)):
                if arr is not None:
                    out += transport.levels(name, arr, labels=True)[-1:]
            if self.labels is not None or self.prediction is not None:
                out.append(self._labels3d())
            self._levels = out + image[-1:]
        return self._levels

    def _labels3d(self) -> transport.Level:
        src = self.labels if self.labels is not None else self.prediction
        assert src is not None
        f = tuple(max(1, -(-n // MAX_3D)) for n in src.shape)
        small = src[:: f[0], :: f[1], :: f[2]]
        dtype = transport.browser_dtype(small, labels=True)
        return transport.Level("labels3d", 0, np.ascontiguousarray(small.astype(dtype)), f)  # type: ignore[arg-type]

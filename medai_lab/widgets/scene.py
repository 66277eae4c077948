"""What a viewer shows, prepared in the kernel: RAS+ arrays, label table, metadata, levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medai_lab.io.volume import Volume
from medai_lab.widgets import transport
from medai_lab.widgets.labels import color_for, label_table

MAX_3D = 128  # voxels per axis of the 3D pane's label volume


@dataclass
class Scene:
    """An image (RAS+) with optional labels and prediction on its grid."""

    image: Volume
    labels: np.ndarray | None = None
    prediction: np.ndarray | None = None
    names: dict[int, str] = field(default_factory=dict)
    title: str = ""
    source: Any = None  # the DICOM series the image came from (a SEG references it)
    series: Volume | None = None  # a 4-D image (RAS+): ``image`` is its volume ``frame``
    frame: int = 0
    _levels: list[transport.Level] | None = field(default=None, repr=False)
    _image_levels: list[transport.Level] | None = field(default=None, repr=False)

    @property
    def table(self) -> list[dict[str, Any]]:
        present = [a for a in (self.labels, self.prediction) if a is not None]
        return label_table(present, self.names)

    def dictionary(self, table: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Labels one can paint: the named ones and those present, ``[{value, name, color}]``
        (``table``: :attr:`table` when already computed)."""
        present = {t["value"]: t for t in (self.table if table is None else table)}
        for value, name in self.names.items():
            if value > 0 and value not in present:
                present[value] = {"value": value, "name": name,
                                  "color": list(color_for(value, name))}  # fmt: skip
        if not present:
            present[1] = {"value": 1, "name": "label 1", "color": list(color_for(1, None))}
        return [present[v] for v in sorted(present)]

    def set_frame(self, t: int) -> bool:
        """Show volume ``t`` of the 4-D series; False when there is none or it is shown."""
        if self.series is None or t == self.frame:
            return False
        if not 0 <= t < self.series.n_volumes:
            raise ValueError(f"frame {t} is outside 0..{self.series.n_volumes - 1}")
        self.frame, self.image = t, self.series.volume(t)
        self._image_levels = self._levels = None
        return True

    def image_levels(self) -> list[transport.Level]:
        """The image's levels only (a new frame of a 4-D series)."""
        return [lv for lv in self.levels() if lv.volume == "image"]

    def labels_changed(self) -> None:
        """The label array was edited: the next stream sends it anew (the image stays cached)."""
        self._levels = None

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
                if not len(idx):  # small structures between the samples
                    idx = np.argwhere(arr > 0)
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
        table = self.table
        return {
            "shape": list(self.image.shape),
            "spacing": [round(s, 6) for s in self.image.spacing],
            "affine": np.round(self.image.affine, 6).tolist(),
            "dtype": transport.browser_dtype(arr).name,
            "range": [float(arr.min()), float(arr.max())] if arr.size else [0.0, 0.0],
            "percentiles": list(self.percentiles()),
            "modality": "CT" if self.is_ct() else str(self.image.meta.get("modality", "")),
            "volumes": names,
            "labels": table,
            "dictionary": self.dictionary(table),
            "editable": True,
            "frames": 1 if self.series is None else self.series.n_volumes,
            "axis4": _axis4(self.series),
            "title": self.title,
        }

    def levels(self) -> list[transport.Level]:
        """Image preview (if any), then the overlays and the 3D labels, then the full image."""
        if self._levels is None:
            if self._image_levels is None:
                self._image_levels = transport.levels("image", self.image.array)
            image = self._image_levels
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


def _axis4(series: Volume | None) -> dict[str, Any] | None:
    """What the frame slider steps through: name, unit and one value per volume (if known)."""
    info = series.axis4 if series is not None else None
    if not info:
        return None if series is None else {"name": "volume", "unit": "", "values": []}
    values = [float(v) for v in info.get("values") or [] if isinstance(v, (int, float))]
    return {"name": str(info.get("name", "volume")), "unit": str(info.get("unit", "")),
            "values": values}  # fmt: skip

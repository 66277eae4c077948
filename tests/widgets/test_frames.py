"""4-D images in the viewer: one volume at a time, the frame slider streams only the image."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medai_lab.io import Volume
from medai_lab.widgets import view
from medai_lab.widgets.transport import decode

pytest.importorskip("anywidget")


def test_a_new_frame_streams_that_volume_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 1000, (12, 10, 8, 5)).astype(np.int16)
    affine = np.diag([-1.0, -1.5, 2.0, 1.0])  # LPS-like: the viewer flips the first two axes
    meta = {
        "modality": "MR",
        "axis4": {"name": "phase", "unit": "ms", "values": [0, 80, 160, 240, 320]},
    }
    labels = np.zeros(arr.shape[:3], np.uint8)
    labels[2:5, 3:6, 1:4] = 1
    w = view(Volume(arr, affine, meta), labels=Volume(labels, affine, {}))
    assert w.meta["frames"] == 5 and w.meta["shape"] == [12, 10, 8]
    assert w.meta["axis4"] == {"name": "phase", "unit": "ms", "values": [0, 80, 160, 240, 320]}
    got: dict = {}
    ends: list = []

    def send(content, buffers=None):
        if content["type"] == "begin":
            got[content["volume"]] = (content, [])
        elif content["type"] == "chunk":
            got[content["volume"]][1].append((content, buffers[0]))
        elif content["type"] == "end":
            ends.append(content["volume"])

    monkeypatch.setattr(w, "send", send)
    w.frame = 3
    deadline = time.monotonic() + 30
    while not ends and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ends == ["image"]  # labels do not travel again
    shown = decode(*got["image"])
    assert np.array_equal(shown, arr[::-1, ::-1, :, 3])  # frame 3, RAS+
    assert w.scene.image.array.shape == (12, 10, 8)
    assert np.array_equal(w.labels, labels[::-1, ::-1, :])

"""Model-assisted proposals: the region around a click, the model's inputs and answer, the
proposal message the viewer sends back."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume
from medai_lab.widgets import view
from medai_lab.widgets.assist import propose, roi_box
from medai_lab.widgets.edits import expand_runs

pytest.importorskip("anywidget")


def test_the_region_is_centred_and_kept_inside() -> None:
    assert roi_box((50, 50, 50), (200, 200, 100), (96, 96, 32)) == (2, 2, 34, 98, 98, 66)
    assert roi_box((3, 190, 99), (200, 200, 100), (96, 96, 32)) == (0, 104, 68, 96, 200, 100)
    assert roi_box((5, 5, 5), (20, 200, 10), (96, 96, 96)) == (0, 0, 0, 20, 96, 10)


def test_the_model_sees_the_crop_and_its_clicks_and_may_not_write_the_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(-100, 100, (60, 50, 40)).astype(np.int16)
    kept = image.copy()
    seen = {}

    def model(roi, clicks):
        seen["roi"], seen["clicks"] = roi.copy(), clicks.copy()
        roi[...] = 0  # a careless model
        out = np.zeros(roi.shape, bool)
        out[tuple(clicks[-1])] = True
        return out

    origin, mask = propose(image, [[10, 10, 10], [40, 30, 20]], model, roi=(16, 16, 16))
    assert origin == (32, 22, 12)
    assert np.array_equal(seen["roi"], image[32:48, 22:38, 12:28])
    assert seen["clicks"].tolist() == [[8, 8, 8]]  # the first click is outside the region
    assert np.argwhere(mask).tolist() == [[8, 8, 8]]
    assert np.array_equal(image, kept)


@pytest.mark.parametrize(
    ("model", "clicks", "message"),
    [
        (lambda roi, c: np.zeros((3, 3, 3)), [[5, 5, 5]], "answered shape"),
        (lambda roi, c: 1 / 0, [[5, 5, 5]], "the model failed: ZeroDivisionError"),
        (lambda roi, c: roi > 0, [], "needs a click"),
        (lambda roi, c: roi > 0, [[5, 5, 99]], "outside the image"),
    ],
)
def test_bad_proposals_say_why_in_one_line(model, clicks, message) -> None:
    image = np.zeros((20, 20, 20), np.int16)
    with pytest.raises(MedaiError, match=message) as err:
        propose(image, clicks, model, roi=(8, 8, 8))
    assert "\n" not in str(err.value)


def test_the_viewer_answers_a_click_with_the_proposal(monkeypatch: pytest.MonkeyPatch) -> None:
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()
    arr = np.zeros((40, 30, 20), np.int16)
    arr[10:20, 5:15, 4:9] = 100
    w = view(Volume(arr, np.diag([1.0, 1.0, 2.0, 1.0]), {}))
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))

    def wait() -> tuple:
        deadline = time.monotonic() + 30
        while not sent and time.monotonic() < deadline:
            time.sleep(0.02)
        return sent.pop()

    w._on_message(w, {"type": "propose", "id": 3, "clicks": [[12, 8, 6]]}, [])
    content, _ = wait()
    assert content["id"] == 3 and "no model" in content["error"]
    w.assist = lambda roi, clicks: roi > 50
    w.assist_roi = (16, 16, 16)
    w._on_message(w, {"type": "propose", "id": 4, "clicks": [[12, 8, 6]]}, [])
    content, buffers = wait()
    assert content["id"] == 4 and "error" not in content
    runs = np.frombuffer(buffers[0], "<u4").reshape(-1, 2)
    assert len(runs) == content["runs"]
    got = np.zeros(arr.shape, bool)
    got[np.unravel_index(expand_runs(runs, arr.shape, 0), arr.shape, order="F")] = True
    want = np.zeros(arr.shape, bool)
    want[4:20, 0:16, 0:16] = arr[4:20, 0:16, 0:16] > 50  # the 16^3 box around the click
    assert np.array_equal(got, want)
    assert (w.labels == 0).all()  # a proposal is a preview: nothing is labelled yet

"""Ruler measurements from the browser: readable items kept, world ends from the affine."""

from __future__ import annotations

import numpy as np
import pytest

from medai_lab.widgets.measure import measurements

AFFINE = np.array([[0.0, -0.9, 0, 40.0], [0.8, 0, 0, -20.0], [0, 0, -2.0, 60.0], [0, 0, 0, 1]])


def test_items_get_world_ends_and_keep_the_screen_length() -> None:
    item = {"kind": "distance", "plane": "axial", "a": [1, 2, 3], "b": [4, 6, 3], "mm": 4.9}
    (got,) = measurements([item], AFFINE)
    assert got["a"] == (1, 2, 3) and got["b"] == (4, 6, 3) and got["mm"] == 4.9
    for end, world in (("a", "a_world"), ("b", "b_world")):
        want = AFFINE @ np.array([*item[end], 1.0])
        assert got[world] == pytest.approx(want[:3].tolist())
    length = np.linalg.norm(np.subtract(got["b_world"], got["a_world"]))
    assert length == pytest.approx(np.linalg.norm(AFFINE[:3, :3] @ [3, 4, 0]))


@pytest.mark.parametrize(
    "bad",
    [
        "not a list item",
        {"plane": "oblique", "a": [0, 0, 0], "b": [1, 1, 1], "mm": 1.0},
        {"plane": "axial", "a": [0, 0], "b": [1, 1, 1], "mm": 1.0},
        {"plane": "axial", "a": [0, 0, "x"], "b": [1, 1, 1], "mm": 1.0},
        {"plane": "axial", "a": [0, 0, 0], "b": [1, 1, 1], "mm": "far"},
    ],
)
def test_malformed_items_are_dropped(bad) -> None:
    good = {"plane": "coronal", "a": [0, 0, 0], "b": [0, 0, 5], "mm": 10.0}
    assert [m["plane"] for m in measurements([bad, good], AFFINE)] == ["coronal"]
    assert measurements("nonsense", AFFINE) == []

"""The viewer's "auto" window, chosen from the image: one choice for notebook and file browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medai_lab.datasets.phantom import make_phantom
from medai_lab.io.volume import Volume
from medai_lab.widgets.api import scene_of
from medai_lab.widgets.autowindow import air_share_in_body, choose_window
from medai_lab.widgets.labels import window_presets


def test_a_chest_opens_on_the_lung_window_an_abdomen_on_soft_tissue(shared_data: Path) -> None:
    chest, _ = make_phantom("lung", seed=3)
    abdomen = scene_of(shared_data / "ct_series_basel" / "dicom")  # real CT, upper abdomen
    assert choose_window(scene_of(chest)) == ("lung", window_presets()["lung"])
    assert choose_window(abdomen) == ("liver", window_presets()["liver"])
    assert air_share_in_body(scene_of(chest).image.array) > air_share_in_body(abdomen.image.array)


def test_the_body_part_the_image_names_wins(shared_data: Path) -> None:
    real = scene_of(shared_data / "ct_series_basel" / "dicom")
    said = Volume(real.image.array, real.image.affine, {**real.image.meta, "body_part": "CHEST"})
    assert choose_window(scene_of(said))[0] == "lung"


def test_not_ct_gets_its_percentiles() -> None:
    mr = np.random.default_rng(0).gamma(2.0, 100.0, (32, 32, 16)).astype(np.float32)
    preset, (width, _level) = choose_window(scene_of(mr, spacing=(1, 1, 1)))
    p1, p99 = np.percentile(mr, [1, 99])
    assert preset == "auto" and np.isclose(width, p99 - p1, rtol=0.05)


def test_the_notebook_viewer_uses_the_same_choice(shared_data: Path) -> None:
    from medai_lab.widgets import view
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()  # a missing bundle is a failure: `make install` builds it
    chest, _ = make_phantom("lung", seed=3)
    viewer = view(chest)
    assert viewer.preset == "lung" and viewer.window == list(window_presets()["lung"])

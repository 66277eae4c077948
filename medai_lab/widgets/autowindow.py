"""The "auto" window of the viewer: chosen from the image itself (one home for the notebook
viewer and documents opened from JupyterLab's file browser).

CT: the body part when the image says it (``BodyPartExamined``, or words of the series
description, table in ``data/body_parts.json``), else its histogram: the share of air inside
the body outline. Lungs fill a third or more of a chest's cross-section; an abdomen holds a
few per cent of bowel gas. Chest -> ``lung`` preset, anything else -> ``liver`` (the
abdominal soft-tissue window). Not CT: the 1st to 99th percentile.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from medai_lab.widgets.labels import window_presets

if TYPE_CHECKING:
    from medai_lab.widgets.scene import Scene

TISSUE_HU = -500.0  # above: soft tissue, fluid, bone; below: air and lung parenchyma
CHEST_AIR_SHARE = 0.2  # air inside the body outline, as a share of the body (chest: 0.3-0.5)
SAMPLES = 2e6  # voxels looked at (a regular subsample of bigger images)


def choose_window(scene: Scene) -> tuple[str, tuple[float, float]]:
    """``(preset, (width, level))`` to open ``scene`` on.

    Returns
    -------
    tuple
        A preset name of :func:`~medai_lab.widgets.labels.window_presets` for CT, else
        ``"auto"`` with the 1st-99th percentile window.
    """
    if not scene.is_ct():
        lo, hi = scene.percentiles()
        return "auto", (max(hi - lo, 1e-3), (hi + lo) / 2)
    preset = preset_from_meta(scene.image.meta) or preset_from_histogram(scene.image.array)
    return preset, window_presets()[preset]


@lru_cache(maxsize=1)
def _body_parts() -> dict[str, str]:
    text = resources.files("medai_lab.widgets").joinpath("data/body_parts.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset_from_meta(meta: dict) -> str:
    """The preset the body part implies (``""`` when the metadata does not say one)."""
    words = []
    for key in ("body_part", "body_part_examined", "BodyPartExamined", "series_description"):
        words += re.findall(r"[a-z]+", str(meta.get(key) or "").lower())
    table = _body_parts()
    for word in words:
        if table.get(word):
            return table[word]
    return ""


def air_share_in_body(array: np.ndarray) -> float:
    """Share of the body (the filled outline of tissue, slice by slice) that is air or lung.

    ``array`` is in HU, x-y-z with axial slices along the last axis (RAS+).
    """
    from scipy import ndimage  # only when a CT is opened

    step = max(1, round((array.size / SAMPLES) ** (1 / 3)))
    tissue = np.asarray(array[::step, ::step, ::step]) > TISSUE_HU
    if not tissue.any():
        return 0.0
    body = np.stack([ndimage.binary_fill_holes(tissue[:, :, k]) for k in range(tissue.shape[2])], 2)
    return float((body & ~tissue).sum() / max(1, body.sum()))


def preset_from_histogram(array: np.ndarray) -> str:
    """``lung`` for a chest (much air inside the body), ``liver`` otherwise."""
    return "lung" if air_share_in_body(array) >= CHEST_AIR_SHARE else "liver"

"""Overlays from the labels hospitals already have: a DICOM SEG or RTSTRUCT file (or a
:class:`~medai_lab.io.labelmap.LabelMap`) drawn on the image it references."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medai_lab.io.volume import Volume


def label_object_overlay(obj: Any, image: Volume) -> tuple[Any, dict[int, str]]:
    """``(overlay, names)``: a SEG/RTSTRUCT path or LabelMap becomes a label Volume on
    ``image``'s grid with its names; anything else comes back unchanged with no names."""
    from medai_lab.io.labelmap import LabelMap

    if isinstance(obj, LabelMap):
        return obj.volume, dict(obj.labels)
    if isinstance(obj, (str, os.PathLike)) and Path(obj).is_file():
        from medai_lab.io.label_objects import label_kind, read_label_object, read_labels

        kind = label_kind(Path(obj))
        if kind:
            label_map = read_labels(read_label_object(Path(obj), kind), image)
            return label_map.volume, dict(label_map.labels)
    return obj, {}

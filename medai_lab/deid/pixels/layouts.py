"""Known vendor screen layouts (data/layouts.yaml): regions that are always filled."""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import cast

from medai_lab.errors import MedaiError

Box = tuple[int, int, int, int]
ENV = "MEDAI_DEID_PIXEL_LAYOUTS"


@lru_cache(maxsize=4)
def _load(extra: str) -> tuple[dict, ...]:
    import yaml

    text = resources.files("medai_lab.deid.pixels").joinpath("data/layouts.yaml").read_text()
    entries = list(yaml.safe_load(text)["layouts"])
    if extra:
        try:
            entries += list(yaml.safe_load(Path(extra).read_text())["layouts"])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise MedaiError(f"{ENV}: cannot read layouts from {extra}: {exc}") from None
    return tuple(entries)


def _matches(match: dict, ds) -> bool:
    if "modality" in match and str(ds.get("Modality", "")).upper() not in match["modality"]:
        return False
    for key, keyword in (("manufacturer", "Manufacturer"), ("model", "ManufacturerModelName")):
        if key in match and str(match[key]).lower() not in str(ds.get(keyword, "")).lower():
            return False
    return all(
        key not in match or int(ds.get(keyword, 0) or 0) == int(match[key])
        for key, keyword in (("rows", "Rows"), ("columns", "Columns"))
    )


def _band_above_regions(ds) -> list[Box]:
    regions = ds.get("SequenceOfUltrasoundRegions") or []
    tops = [int(r.RegionLocationMinY0) for r in regions if "RegionLocationMinY0" in r]
    top = min(tops, default=0)
    return [(0, 0, int(ds.Columns), top)] if top > 0 else []


def layout_boxes(ds) -> tuple[list[Box], list[str]]:
    """Boxes (clipped to the image) and the names of the layouts that matched ``ds``."""
    h, w = int(ds.Rows), int(ds.Columns)
    boxes: list[Box] = []
    names: list[str] = []
    for entry in _load(os.environ.get(ENV, "")):
        if not _matches(entry.get("match") or {}, ds):
            continue
        found = [cast(Box, tuple(int(v) for v in b)) for b in entry.get("boxes") or []]
        if entry.get("band_above_regions"):
            found += _band_above_regions(ds)
        found = [
            (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
            for x0, y0, x1, y1 in found
            if min(w, x1) > max(0, x0) and min(h, y1) > max(0, y0)
        ]
        if found:
            boxes += found
            names.append(str(entry["name"]))
    return boxes, names

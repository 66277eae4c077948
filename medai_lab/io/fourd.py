"""Frames sharing slice positions grouped into volumes: the 4th axis of a series.

Time points, cardiac phases, echoes, diffusion directions, contrast or respiratory phases and
repeated acquisitions all put several frames at each position. The attribute that varies
decides the 4th axis; each candidate (in the order of :data:`AXES`) is accepted only when it
splits the frames into complete volumes (every position exactly once in every volume), so a
partly filled attribute never mis-sorts frames. Frames equal in position and in every
attribute are duplicates and are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medai_lab.errors import SeriesGeometryError

_DUP_TOL = 1e-3  # mm: frames closer than this along the normal share a position

# (axis name, keys grouped together, unit of the reported values). Order = priority.
AXES: list[tuple[str, tuple[str, ...]]] = [
    ("diffusion", ("b_value", "gradient")),
    ("diffusion", ("b_value",)),
    ("echo", ("echo_number", "echo_time")),
    ("echo", ("echo_time",)),
    ("echo", ("echo_number",)),
    ("time", ("temporal_position",)),
    ("phase", ("trigger_time",)),
    ("component", ("image_type",)),
    ("time", ("acquisition_number",)),
    ("time", ("acquisition_time",)),
    ("phase", ("phase_number",)),
    ("dimension", ("dim_index",)),
]
# Attributes that say nothing about a frame's place (never an axis, never a duplicate sign).
_IGNORED = {"instance_number", "repetition_time", "flip_angle", "field_strength"}
SPLITS = ("echo", "phase", "time", "diffusion", "component")


@dataclass
class FourthAxis:
    """The 4th axis: its name, the keys that vary along it, and per-volume attributes.

    ``volumes[t]`` holds the attributes constant within volume ``t`` (``echo_time`` in ms,
    ``trigger_time`` in ms, ``b_value`` in s/mm2, ``gradient`` as a DICOM patient (LPS) unit
    vector, ``acquisition_time`` in s since midnight, ...).
    """

    name: str
    keys: tuple[str, ...]
    volumes: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> list[Any]:
        """One value per volume, the most telling one for the axis (documented in meta)."""
        key, _ = self.value_key()
        vals = [v.get(key) for v in self.volumes]
        if key == "acquisition_time" and all(v is not None for v in vals):
            return [round(float(v) - float(vals[0]), 6) for v in vals]  # type: ignore[arg-type]
        return vals

    def value_key(self) -> tuple[str, str]:
        """(attribute, unit) reported as the axis values."""
        varying = self.varying()
        for key, unit in (
            ("b_value", "s/mm2"),
            ("echo_time", "ms"),
            ("trigger_time", "ms"),
            ("acquisition_time", "s"),
        ):
            if key in self.keys or (key in varying and self.name in ("time", "phase")):
                return key, unit
        return self.keys[0], ""

    def varying(self) -> set[str]:
        keys = {k for v in self.volumes for k in v}
        return {k for k in keys if len({repr(v.get(k)) for v in self.volumes}) > 1}

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary: name, size, unit, values (and gradients for diffusion)."""
        key, unit = self.value_key()
        out: dict[str, Any] = {
            "name": self.name,
            "attribute": key,
            "unit": unit,
            "size": len(self.volumes),
            "values": self.values(),
        }
        if self.name == "diffusion":
            out["gradients_lps"] = [
                list(v.get("gradient") or (0.0, 0.0, 0.0)) for v in self.volumes
            ]
        return out


def positions(frames: list[Any], normal: np.ndarray) -> np.ndarray:
    """Index of each frame's slice position (frames within 1 micrometre share one)."""
    pos = np.array([float(np.dot(f.geometry.ipp, normal)) for f in frames])
    order = np.argsort(pos, kind="stable")
    index = np.empty(len(pos), dtype=int)
    current, last = -1, None
    for i in order:
        if last is None or pos[i] - last >= _DUP_TOL:
            current += 1
            last = pos[i]
        index[i] = current
    return index


def group_volumes(
    frames: list[Any], normal: np.ndarray, *, more_dims: Callable[[], bool] | None = None
) -> tuple[FourthAxis, list[list[Any]]] | None:
    """Split ``frames`` (objects with ``.geometry.ipp`` and ``.geometry.dims``) into volumes.

    Returns ``None`` when no two frames share a position (a 3-D series). ``more_dims`` is
    called once when the standard attributes do not separate the volumes; it may add vendor
    fields to the frames' ``dims`` and returns whether it added any.

    Raises
    ------
    SeriesGeometryError
        Duplicates, or positions holding different numbers of frames.
    """
    pos = positions(frames, normal)
    n_pos = int(pos.max()) + 1
    if n_pos == len(frames):
        return None
    counts = np.bincount(pos)
    if counts.min() != counts.max():
        dups = _duplicates(frames, pos)
        if dups:
            raise SeriesGeometryError(_DUPLICATE.format(n=dups))
        raise SeriesGeometryError(
            f"slices share a position but do not form complete volumes: positions hold "
            f"{counts.min()} to {counts.max()} frames (missing or extra files?)"
        )
    found = _try_axes(frames, pos, n_pos)
    if found is None and more_dims is not None and more_dims():
        found = _try_axes(frames, pos, n_pos)
    if found is None:
        raise SeriesGeometryError(_why_not(frames, pos))
    return found


def _dims(frame: Any) -> dict[str, Any]:
    return frame.geometry.dims


def _try_axes(
    frames: list[Any], pos: np.ndarray, n_pos: int
) -> tuple[FourthAxis, list[list[Any]]] | None:
    n_vol = len(frames) // n_pos
    candidates = [a for a in AXES if _varies(frames, a[1])]
    for name, keys in candidates:
        got = _by_value(frames, pos, n_vol, keys)
        if got is None and name == "diffusion":
            got = _by_rank(frames, pos, n_vol, keys)  # repeated b=0 or repeated directions
        if got is not None:
            return _finish(name, keys, got)
    # Two attributes together (multi-echo time series, echoes x components, ...).
    for i, (name1, keys1) in enumerate(candidates):
        for name2, keys2 in candidates[i + 1 :]:
            if name1 == name2:
                continue
            got = _by_value(frames, pos, n_vol, keys1 + keys2)
            if got is not None:
                return _finish(f"{name1}+{name2}", keys1 + keys2, got)
    return None


def _varies(frames: list[Any], keys: tuple[str, ...]) -> bool:
    first = _dims(frames[0])
    if keys[0] not in first:
        return False
    return any(_value(_dims(f), keys) != _value(first, keys) for f in frames)


def _value(dims: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(dims.get(k) for k in keys)


def _sort_key(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v) for v in value)


def _by_value(
    frames: list[Any], pos: np.ndarray, n_vol: int, keys: tuple[str, ...]
) -> list[list[Any]] | None:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(_value(_dims(f), keys), []).append(i)
    if len(groups) != n_vol or any(None in k[:1] for k in groups):
        return None
    for members in groups.values():
        if len({int(pos[i]) for i in members}) != len(members):
            return None
    if "gradient" in keys or keys == ("b_value",):
        # Diffusion volumes stay in acquisition order, as scanners (and dcm2niix) list them.
        order = sorted(groups, key=lambda k: min(_instance(frames[i]) for i in groups[k]))
    else:
        order = sorted(groups, key=_sort_key)
    return [[frames[i] for i in groups[k]] for k in order]


def _instance(frame: Any) -> float:
    return float(_dims(frame).get("instance_number", 0.0))


def _by_rank(
    frames: list[Any], pos: np.ndarray, n_vol: int, keys: tuple[str, ...]
) -> list[list[Any]] | None:
    """Volume t = the t-th frame of each position in acquisition order, if that is consistent."""
    if not all("instance_number" in _dims(f) for f in frames):
        return None
    by_pos: dict[int, list[Any]] = {}
    for f, p in zip(frames, pos, strict=True):
        by_pos.setdefault(int(p), []).append(f)
    ranked = [sorted(fs, key=_instance) for _, fs in sorted(by_pos.items())]
    volumes = [[fs[t] for fs in ranked] for t in range(n_vol)]
    for vol in volumes:
        if len({_value(_dims(f), keys) for f in vol}) != 1:
            return None
    return volumes


def _finish(
    name: str, keys: tuple[str, ...], volumes: list[list[Any]]
) -> tuple[FourthAxis, list[list[Any]]]:
    attrs = []
    for vol in volumes:
        common = dict(_dims(vol[0]))
        for f in vol[1:]:
            d = _dims(f)
            common = {k: v for k, v in common.items() if d.get(k) == v}
        common.pop("instance_number", None)
        attrs.append(common)
    return FourthAxis(name, keys, attrs), volumes


_DUPLICATE = (
    "{n} duplicate slice(s): they share a position with another slice and differ in no "
    "echo/time/b-value/acquisition attribute (copies of the same image?); remove them"
)


def _duplicates(frames: list[Any], pos: np.ndarray) -> int:
    """Frames equal to another one at their position in every attribute that places them."""
    seen: dict[tuple[int, str], int] = {}
    for f, p in zip(frames, pos, strict=True):
        d = {k: v for k, v in _dims(f).items() if k not in _IGNORED}
        key = (int(p), repr(sorted(d.items())))
        seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


def _why_not(frames: list[Any], pos: np.ndarray) -> str:
    dups = _duplicates(frames, pos)
    if dups:
        return _DUPLICATE.format(n=dups)
    return (
        "slices share a position and no attribute (temporal position, trigger time, echo, "
        "b-value, acquisition number or time, frame type) splits them into complete volumes"
    )

"""Label edits as compact diffs (PROTOCOL.md "Editing"): runs of voxels along one axis.

An edit sets groups of voxels to a value. Each group is a list of runs ``(start, length)``:
``start`` is a flat index of the RAS+ label array in F order (``i + nx * (j + ny * k)``) and the
run covers ``length`` voxels stepping along ``axis`` (stride 1, nx or nx*ny), never leaving the
row it starts in. Runs travel as one little-endian uint32 buffer ``[start0, len0, start1, ...]``;
the message says ``axis`` and ``groups`` = ``[[value, number of runs], ...]``. A painted disc on
an axial slice of radius r voxels is about 2r runs (16 bytes a row), never the whole volume.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medai_lab.errors import MedaiError

MAX_LABEL = 65535


def strides(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Flat-index step of each axis (F order)."""
    nx, ny = shape[0], shape[1]
    return (1, nx, nx * ny)


def encode_runs(flat: np.ndarray, shape: tuple[int, ...], axis: int = 0) -> np.ndarray:
    """``(n, 2)`` uint32 runs ``(start, length)`` covering the flat indices ``flat`` exactly.

    Parameters
    ----------
    flat
        Flat F-order indices (any order, duplicates allowed).
    shape
        The label array's shape (x, y, z).
    axis
        The axis the runs step along.
    """
    flat = np.unique(np.asarray(flat, dtype=np.int64))
    if flat.size == 0:
        return np.zeros((0, 2), dtype=np.uint32)
    ijk = np.stack(np.unravel_index(flat, shape, order="F"))
    others = [a for a in range(3) if a != axis]
    # Sort so that the run axis is fastest, then cut where the next voxel is not the next one
    # along the axis in the same row.
    order = np.lexsort((ijk[axis], ijk[others[0]], ijk[others[1]]))
    ijk, flat = ijk[:, order], flat[order]
    same_row = (np.diff(ijk[others[0]]) == 0) & (np.diff(ijk[others[1]]) == 0)
    cut = np.flatnonzero(~(same_row & (np.diff(ijk[axis]) == 1))) + 1
    starts = np.concatenate(([0], cut))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    return np.stack([flat[starts], lengths], axis=1).astype(np.uint32)


def expand_runs(runs: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Flat indices of ``runs`` (the inverse of :func:`encode_runs`), checked against ``shape``."""
    runs = np.asarray(runs, dtype=np.int64).reshape(-1, 2)
    if runs.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts, lengths = runs[:, 0], runs[:, 1]
    if (lengths < 1).any():
        raise MedaiError("edit: a run of length 0")
    if starts.max() >= int(np.prod(shape)):
        raise MedaiError(f"edit: a run starts outside the label array of shape {tuple(shape)}")
    along = np.unravel_index(starts, shape, order="F")[axis]
    if (along + lengths > shape[axis]).any():
        raise MedaiError(f"edit: a run leaves the label array of shape {tuple(shape)}")
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets * strides(shape)[axis]


def apply_edit(labels: np.ndarray, content: dict[str, Any], buffer: Any) -> int:
    """Apply one ``edit`` message to ``labels`` (x-y-z) in place; returns voxels written.

    Raises
    ------
    MedaiError
        The message does not describe runs inside ``labels`` or a value it can hold. Nothing is
        written then.
    """
    try:
        axis = int(content.get("axis", 0))
        groups = [(int(v), int(n)) for v, n in content["groups"]]
    except (KeyError, TypeError, ValueError):
        raise MedaiError("edit: the message has no valid axis/groups") from None
    if axis not in (0, 1, 2):
        raise MedaiError(f"edit: axis {axis} is not 0, 1 or 2")
    raw = np.frombuffer(memoryview(buffer).cast("B"), dtype="<u4") if buffer is not None else None
    total = sum(n for _, n in groups)
    if raw is None or raw.size != 2 * total:
        sent = 0 if raw is None else raw.size // 2
        raise MedaiError(f"edit: {sent} runs sent, {total} announced")
    top = np.iinfo(labels.dtype).max if labels.dtype.kind in "iu" else MAX_LABEL
    writes = []
    pos = 0
    for value, n in groups:
        if not 0 <= value <= min(top, MAX_LABEL) or n < 0:
            raise MedaiError(f"edit: label value {value} does not fit the label array")
        writes.append((value, expand_runs(raw[2 * pos : 2 * (pos + n)], labels.shape, axis)))
        pos += n
    count = 0
    for value, flat in writes:  # all checked: now write
        labels[np.unravel_index(flat, labels.shape, order="F")] = value
        count += flat.size
    return count


def edit_message(groups: list[tuple[int, np.ndarray]], shape: tuple[int, ...], axis: int = 0,
                 seq: int = 0) -> tuple[dict[str, Any], bytes]:  # fmt: skip
    """``(content, buffer)`` of an edit setting each ``(value, flat indices)`` group."""
    header, parts = [], []
    for value, flat in groups:
        runs = encode_runs(flat, shape, axis)
        header.append([int(value), len(runs)])
        parts.append(runs.astype("<u4").ravel())
    data = np.concatenate(parts).tobytes() if parts else b""
    return {"type": "edit", "seq": seq, "axis": axis, "groups": header}, data

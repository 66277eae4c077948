"""The voxels of one label class as a sequence of flat indices, without storing them.

MONAI's class-balanced patch sampler asks for ``len(indices)`` and ``indices[i]`` of every
class, and by default finds them again on every draw (a pass over the whole label per
class: most of a cached draw's time). Storing them instead costs 8 bytes a voxel, per case
(about 150 MB for a liver CT). :class:`VoxelIndex` keeps one cumulative count per row of the
label (the last axis) and answers ``indices[i]`` by a binary search over rows and a scan of
one row: the same values, in the same order, as ``nonzero(label.ravel() == c)``, so patch
centres drawn with the same random state are exactly the ones MONAI would draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np


def row_counts(label: np.ndarray, num_classes: int) -> np.ndarray:
    """Cumulative voxel counts per row (last axis) of each class: shape (classes, rows)."""
    rows = np.asarray(label).reshape(-1, np.asarray(label).shape[-1])
    counts = np.empty((num_classes, rows.shape[0]), dtype=np.int64)
    for c in range(num_classes):
        np.cumsum(np.count_nonzero(rows == c, axis=1), out=counts[c])
    return counts


class VoxelIndex(Sequence[int]):
    """Flat (C-order) indices of the voxels equal to ``value`` in ``label``, found on demand.

    ``cumulative`` is this class's row of :func:`row_counts` for the same label.
    """

    def __init__(self, label: np.ndarray, value: int, cumulative: np.ndarray) -> None:
        arr = np.asarray(label)
        self._rows = arr.reshape(-1, arr.shape[-1])
        self._value = value
        self._cum = np.asarray(cumulative)
        if self._cum.shape != (self._rows.shape[0],):
            raise ValueError("counts do not belong to this label (its shape changed?)")

    def __len__(self) -> int:
        return int(self._cum[-1]) if len(self._cum) else 0

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        k = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError(f"voxel {i} of {n}")
        row = int(np.searchsorted(self._cum, k, side="right"))
        before = int(self._cum[row - 1]) if row else 0
        col = int(np.flatnonzero(self._rows[row] == self._value)[k - before])
        return row * self._rows.shape[1] + col

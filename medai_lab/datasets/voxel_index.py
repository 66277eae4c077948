"""The voxels of a label class (or of foreground / background) as flat indices, not stored.

MONAI's patch samplers ask for ``len(indices)`` and ``indices[i]`` (per class, or foreground
and background) and by default find them again on every draw: a pass over the whole label,
most of a cached draw's time. Storing them instead costs 8 bytes a voxel per case (about
150 MB for a liver CT). :class:`VoxelIndex` keeps one cumulative count per row of the volume
(the last axis) and answers ``indices[i]`` by a binary search over rows and a look at one
row: the same values, in the same order, as MONAI's ``nonzero`` of the flattened mask, so
patch centres drawn with the same random state are exactly the ones MONAI would draw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

RowMask = Callable[[int], np.ndarray]  # row index -> boolean mask of that row


def _rows(volume: Any) -> np.ndarray:
    """A channel-first (C, X, Y, Z) volume as (C, rows, Z)."""
    arr = np.asarray(volume)
    return arr.reshape(arr.shape[0], -1, arr.shape[-1])


def _cumulative(mask: np.ndarray) -> np.ndarray:
    return np.cumsum(np.count_nonzero(mask, axis=-1), dtype=np.int64)


def class_counts(label: Any, num_classes: int) -> np.ndarray:
    """Cumulative per-row voxel counts of each label value: shape (classes, rows)."""
    rows = _rows(label).reshape(-1, np.asarray(label).shape[-1])  # the channel is 1
    return np.stack([_cumulative(rows == c) for c in range(num_classes)])


def class_indices(label: Any, counts: np.ndarray) -> list[VoxelIndex]:
    """One :class:`VoxelIndex` per label value, as ``map_classes_to_indices`` lists them."""
    rows = _rows(label).reshape(-1, np.asarray(label).shape[-1])
    _check(counts, rows.shape[0])
    return [VoxelIndex(_equal_row(rows, c), cum, rows.shape[1]) for c, cum in enumerate(counts)]


def _equal_row(rows: np.ndarray, value: int) -> RowMask:
    def mask(r: int) -> np.ndarray:
        return np.asarray(rows[r] == value)

    return mask


def posneg_counts(label: Any, image: Any, threshold: float) -> np.ndarray:
    """Cumulative per-row counts of foreground and background voxels: shape (2, rows).

    As ``map_binary_to_indices``: foreground is any non-zero label channel (a one-hot label
    without its background channel), background the rest where any image channel is above
    ``threshold``.
    """
    fg, bg = _posneg_rows(label, image, threshold)
    return np.stack([_cumulative(fg(None)), _cumulative(bg(None))])


def posneg_indices(
    label: Any, image: Any, threshold: float, counts: np.ndarray
) -> tuple[VoxelIndex, VoxelIndex]:
    """Foreground and background :class:`VoxelIndex`, as ``map_binary_to_indices`` gives them."""
    fg, bg = _posneg_rows(label, image, threshold)
    _check(counts, _rows(label).shape[1])
    width = np.asarray(label).shape[-1]
    return VoxelIndex(fg, counts[0], width), VoxelIndex(bg, counts[1], width)


def _check(counts: np.ndarray, rows: int) -> None:
    if np.asarray(counts).shape[-1] != rows:
        raise ValueError("voxel counts do not belong to this label (its shape changed?)")


def _posneg_rows(label: Any, image: Any, threshold: float) -> tuple[Callable[..., Any], ...]:
    lab = _rows(label)
    if lab.shape[0] > 1:
        lab = lab[1:]  # one-hot: the background channel is not foreground
    img = _rows(image)

    def fg(r: int | None) -> np.ndarray:
        part = lab if r is None else lab[:, r]
        return np.any(part != 0, axis=0)

    def bg(r: int | None) -> np.ndarray:
        part = img if r is None else img[:, r]
        return np.any(part > threshold, axis=0) & ~fg(r)

    return fg, bg


class VoxelIndex:
    """Flat (C-order) indices of the voxels where a mask is true, found on demand.

    ``row_mask(r)`` gives the mask of row ``r`` (``width`` voxels), ``cumulative`` the running
    count of true voxels over the rows. Deliberately not a ``collections.abc.Sequence``: MONAI
    turns sequences into arrays, which would list every voxel.
    """

    def __init__(self, row_mask: RowMask, cumulative: np.ndarray, width: int) -> None:
        self._mask, self._cum, self._width = row_mask, np.asarray(cumulative), int(width)

    def __len__(self) -> int:
        return int(self._cum[-1]) if len(self._cum) else 0

    def __getitem__(self, i: int) -> int:
        n = len(self)
        k = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError(f"voxel {i} of {n}")
        row = int(np.searchsorted(self._cum, k, side="right"))
        before = int(self._cum[row - 1]) if row else 0
        return row * self._width + int(np.flatnonzero(self._mask(row))[k - before])

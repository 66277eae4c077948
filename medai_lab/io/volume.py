"""The :class:`Volume` type: a voxel array with its exact place in the patient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Volume:
    """A 3-D image on a regular grid, or a series of them on one grid (4-D).

    Parameters
    ----------
    array
        Voxel values in x-y-z order (``array[i, j, k]``; i runs along DICOM columns, j along
        rows, k across slices), as NIfTI stores them. A 4-D series adds a 4th axis
        (``array[i, j, k, t]``: time points, cardiac phases, echoes, diffusion volumes ...),
        described by ``meta["axis4"]`` (see :attr:`axis4`).
    affine
        4x4 matrix from voxel index ``(i, j, k, 1)`` to RAS+ world millimetres (NIfTI convention).
    meta
        Non-identifying metadata (modality, transfer syntax, rescale, warnings, ...).
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        if self.array.ndim not in (3, 4):
            raise ValueError(
                f"Volume arrays are 3-D (x, y, z) or 4-D (x, y, z, t), got shape {self.array.shape}"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """(x, y, z) or, for a 4-D series, (x, y, z, t)."""
        return tuple(int(n) for n in self.array.shape)

    @property
    def n_volumes(self) -> int:
        """Length of the 4th axis (1 for a 3-D image)."""
        return int(self.array.shape[3]) if self.array.ndim == 4 else 1

    @property
    def axis4(self) -> dict[str, Any] | None:
        """What the 4th axis is, or ``None`` for a 3-D image.

        ``name`` (``time``, ``phase``, ``echo``, ``diffusion``, ``component``, ``dimension``
        or two joined by ``+``), ``attribute`` and ``unit`` of ``values`` (one per volume:
        times in s from the first, trigger times or echo times in ms, b-values in s/mm2),
        ``size``; diffusion adds ``gradients_lps`` (unit vectors in the DICOM patient frame).
        """
        return self.meta.get("axis4") if self.array.ndim == 4 else None

    def volume(self, t: int) -> Volume:
        """Volume ``t`` of a 4-D series as a 3-D :class:`Volume` (a view, same affine)."""
        if self.array.ndim == 3:
            if t != 0:
                raise IndexError("a 3-D image has only volume 0")
            return self
        meta = {k: v for k, v in self.meta.items() if k != "axis4"}
        meta["volume_index"] = t
        if self.axis4 and "volumes" in self.meta:
            meta["volume_attributes"] = self.meta["volumes"][t]
        return Volume(self.array[..., t], self.affine, meta)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS+ position (mm) of the centre of voxel (0, 0, 0)."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Axis codes such as ``"LPS"``: the direction each array axis points to."""
        return "".join(axis_codes(self.affine))

    def voxel_to_world(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """RAS+ mm of voxel indices (shape (3,) or (N, 3))."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous voxel indices of RAS+ mm points."""
        xyz = np.asarray(xyz, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def to_ras(self) -> Volume:
        """The same image with axes permuted/flipped to the closest RAS+ orientation (a view)."""
        perm, flips = ras_reorder(self.affine)
        arr = np.transpose(self.array, [*perm, 3] if self.array.ndim == 4 else perm)
        aff = self.affine[:, [*perm, 3]].copy()
        for ax, flip in enumerate(flips):
            if flip:
                arr = np.flip(arr, axis=ax)
                n = arr.shape[ax]
                aff[:3, 3] = aff[:3, 3] + aff[:3, ax] * (n - 1)
                aff[:3, ax] = -aff[:3, ax]
        return Volume(arr, aff, dict(self.meta))

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        extra = ""
        if self.axis4:
            extra = f", 4th axis={self.axis4.get('name')}"
        return (
            f"Volume(shape={self.shape}{extra}, dtype={self.array.dtype}, spacing=({sp}) mm, "
            f"orientation={self.orientation})"
        )


def ras_reorder(affine: np.ndarray) -> tuple[list[int], list[bool]]:
    """Axis permutation and flips that bring an affine closest to RAS+.

    Returns ``perm`` (for each RAS axis, the array axis that runs along it) and ``flips`` (whether
    that axis must be reversed).
    """
    rot = np.asarray(affine, dtype=np.float64)[:3, :3]
    cos = np.abs(rot / np.linalg.norm(rot, axis=0))
    perm: list[int] = [-1, -1, -1]
    # Greedy on the strongest cosine first; ties (45 degree obliques) resolve deterministically.
    for flat in np.argsort(-cos, axis=None):
        world, ax = divmod(int(flat), 3)
        if perm[world] == -1 and ax not in perm:
            perm[world] = ax
    flips = [bool(rot[world, perm[world]] < 0) for world in range(3)]
    return perm, flips


def axis_codes(affine: np.ndarray) -> tuple[str, str, str]:
    """Direction letters (R/L, A/P, S/I) that each array axis points toward."""
    perm, flips = ras_reorder(affine)
    letters = [("R", "L"), ("A", "P"), ("S", "I")]
    codes = [""] * 3
    for world, ax in enumerate(perm):
        codes[ax] = letters[world][1 if flips[world] else 0]
    return codes[0], codes[1], codes[2]

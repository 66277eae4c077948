"""Slice order and the voxel-to-world affine of a stack of frames.

Order comes from ImagePositionPatient projected on the slice normal, never from
InstanceNumber or file names. Irregular stacks are refused with the reason, or (for missing
slices only, when asked) filled with blank slices so the grid stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medai_lab.errors import SeriesGeometryError
from medai_lab.io.frameinfo import FrameGeometry
from medai_lab.io.headers import ImageHeader

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_ORIENT_TOL = 1e-4  # cosine difference tolerated between slices of one stack
_DUP_TOL = 1e-3  # mm: two frames closer than this along the normal share a position


@dataclass
class FrameRef:
    """Frame ``index`` of file ``header``; ``None`` header means a blank (missing) slice."""

    header: ImageHeader | None
    index: int
    geometry: FrameGeometry | None


@dataclass
class StackGeometry:
    frames: list[FrameRef]  # in slice order k = 0, 1, ...
    affine: np.ndarray  # voxel (i=column, j=row, k=slice) -> RAS+ mm
    slice_step: float
    warnings: list[str] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)  # k of blank slices


def stack_geometry(headers: list[ImageHeader], *, allow_gaps: bool = False) -> StackGeometry:
    """Order the frames of ``headers`` and compute the affine.

    Raises
    ------
    SeriesGeometryError
        Mixed orientation/size/pixel spacing, duplicate positions, missing slices (unless
        ``allow_gaps``), irregular spacing, or a single slice with no thickness.
    """
    return stack_refs(all_frames(headers), allow_gaps=allow_gaps)


def all_frames(headers: list[ImageHeader]) -> list[FrameRef]:
    """One :class:`FrameRef` per frame of ``headers``, in file order."""
    return [FrameRef(h, i, g) for h in headers for i, g in enumerate(h.frames)]


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal of the slices (row cosines x column cosines)."""
    return np.cross(_unit(iop[:3]), _unit(iop[3:]))


def stack_refs(refs: list[FrameRef], *, allow_gaps: bool = False) -> StackGeometry:
    """:func:`stack_geometry` for given frames (one volume of a 4-D series, say)."""
    headers = list({id(r.header): r.header for r in refs if r.header is not None}.values())
    first = refs[0].geometry
    assert first is not None
    sizes = {(h.rows, h.columns) for h in headers}
    if len(sizes) > 1:
        raise SeriesGeometryError(f"mixed image sizes in one series: {sorted(sizes)}")
    iops = np.array([r.geometry.iop for r in refs if r.geometry is not None])
    if np.max(np.abs(iops - first.iop)) > _ORIENT_TOL:
        raise SeriesGeometryError(
            "slices have different orientations (a localizer or mixed stacks?)"
        )
    spacings = np.array([r.geometry.spacing for r in refs if r.geometry is not None])
    if np.max(np.abs(spacings - spacings[0])) > 1e-4:
        raise SeriesGeometryError("slices have different pixel spacing")

    row_cos, col_cos = _unit(first.iop[:3]), _unit(first.iop[3:])
    normal = np.cross(row_cos, col_cos)
    dy, dx = first.spacing  # PixelSpacing = (between rows, between columns)
    pos = np.array([np.dot(r.geometry.ipp, normal) for r in refs if r.geometry is not None])
    order = np.argsort(pos, kind="stable")
    refs = [refs[i] for i in order]
    pos = pos[order]
    warnings: list[str] = []
    missing: list[int] = []

    if len(refs) == 1:
        h = refs[0].header
        assert h is not None
        step = h.spacing_between_slices or h.slice_thickness
        if not step or step <= 0:
            raise SeriesGeometryError("single slice without SliceThickness: its depth is unknown")
        step_vec = normal * step
        warnings.append("single slice: depth taken from the slice thickness")
    else:
        diffs = np.diff(pos)
        dup = int(np.sum(diffs < _DUP_TOL))
        if dup:
            raise SeriesGeometryError(
                f"{dup + 1} or more slices share a position (several time points, echoes or a "
                "repeated acquisition in one series?)"
            )
        step = float(np.min(diffs))
        ratio = diffs / step
        tol = max(0.01, 0.02 / step)  # 1% or 0.02 mm, whichever is looser
        if np.max(np.abs(ratio - 1)) > tol:
            whole = np.abs(ratio - np.rint(ratio)) <= tol
            if not np.all(whole):
                raise SeriesGeometryError(
                    f"irregular slice spacing ({np.min(diffs):.3f} to {np.max(diffs):.3f} mm)"
                )
            n_missing = int(np.sum(np.rint(ratio) - 1))
            if not allow_gaps:
                raise SeriesGeometryError(
                    f"{n_missing} slice(s) missing (gaps up to {np.max(diffs):.3f} mm, step "
                    f"{step:.3f} mm); pass allow_gaps=True to fill them with blank slices"
                )
            refs, missing = _fill_gaps(refs, np.rint(ratio).astype(int))
            warnings.append(f"{n_missing} missing slice(s) filled with blank slices")
        first_ipp = refs[0].geometry.ipp  # type: ignore[union-attr]
        last_ipp = refs[-1].geometry.ipp  # type: ignore[union-attr]
        step_vec = (last_ipp - first_ipp) / (len(refs) - 1)
        tilt = np.degrees(np.arccos(min(1.0, abs(np.dot(_unit(step_vec), normal)))))
        if tilt > 0.01:
            warnings.append(f"gantry tilt {tilt:.2f} deg: the affine is sheared, voxels are exact")
        step = float(np.linalg.norm(step_vec))

    lps = np.eye(4)
    lps[:3, 0] = row_cos * dx
    lps[:3, 1] = col_cos * dy
    lps[:3, 2] = step_vec
    lps[:3, 3] = refs[0].geometry.ipp  # type: ignore[union-attr]
    return StackGeometry(refs, LPS_TO_RAS @ lps, float(step), warnings, missing)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _fill_gaps(refs: list[FrameRef], ratio: np.ndarray) -> tuple[list[FrameRef], list[int]]:
    filled = [refs[0]]
    missing: list[int] = []
    for ref, r in zip(refs[1:], ratio, strict=True):
        for _ in range(int(r) - 1):
            missing.append(len(filled))
            filled.append(FrameRef(None, 0, None))
        filled.append(ref)
    return filled, missing

"""Vectorised geometry for the CT phantoms: a patient-frame grid, shapes and smooth noise.

All coordinates are millimetres in a *patient frame* with RAS+ axes (NIfTI convention):
+x toward the patient's right, +y anterior, +z superior. The frame is the world frame shifted
and rolled slightly about z, so each case lies a little differently on the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_F = np.float32  # float32 halves memory traffic; phantom geometry needs no more precision


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)`` (radians); its columns are the local axes."""
    cz, sz, cy, sy, cx, sx = (f(a) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Lobes:
    """Smooth bumps (positive amplitude) and dents (negative) on a unit sphere's surface."""

    dirs: np.ndarray  # (k, 3) unit vectors
    amps: np.ndarray  # (k,) relative radius change at each lobe's peak
    sharpness: float = 4.0

    @property
    def reach(self) -> float:
        return 1.0 + float(np.abs(self.amps).sum())


def random_lobes(rng: np.random.Generator, n: int, amp: float, sharpness: float = 4.0) -> Lobes:
    """``n`` lobes in random directions with amplitudes uniform in ``[-amp, amp]``."""
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return Lobes(dirs, rng.uniform(-amp, amp, size=n), sharpness)


class Grid:
    """Patient-frame coordinates of every voxel centre, as broadcastable arrays.

    ``px``/``py`` have shape ``(nx, ny, 1)`` and ``pz`` ``(1, 1, nz)``: the roll is about z
    only, so in-plane and through-plane coordinates separate and cylinders cost a 2-D pass.
    """

    def __init__(
        self, affine: np.ndarray, shape: tuple[int, int, int], centre: np.ndarray, roll: float
    ) -> None:
        if np.count_nonzero(affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))):
            raise ValueError("phantom grids use an axis-aligned (diagonal) affine")
        self.shape = shape
        self.affine = affine
        self.centre = np.asarray(centre, dtype=np.float64)
        self.rot = rotation(roll)
        nx, ny, nz = shape
        xw = affine[0, 0] * np.arange(nx) + affine[0, 3]
        yw = affine[1, 1] * np.arange(ny) + affine[1, 3]
        zw = affine[2, 2] * np.arange(nz) + affine[2, 3]
        self.xw = xw.astype(_F)[:, None, None]
        self.yw = yw.astype(_F)[None, :, None]
        dx, dy = xw[:, None] - self.centre[0], yw[None, :] - self.centre[1]
        c, s = self.rot[0, 0], self.rot[1, 0]
        self.px = (c * dx + s * dy).astype(_F)[:, :, None]
        self.py = (-s * dx + c * dy).astype(_F)[:, :, None]
        self.pz = (zw - self.centre[2]).astype(_F)[None, None, :]

    def to_world(self, p: np.ndarray) -> np.ndarray:
        """RAS+ world mm of patient-frame points ``(..., 3)``."""
        return np.asarray(p, dtype=np.float64) @ self.rot.T + self.centre

    def box(self, centre: np.ndarray, half: float) -> tuple[slice, slice, slice] | None:
        """Index slices covering a cube of half-width ``half`` mm around a patient point."""
        corners = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T * half
        world = self.to_world(np.asarray(centre) + corners)
        diag = np.diag(self.affine)[:3]
        idx = (world - self.affine[:3, 3]) / diag
        lo = np.maximum(np.floor(idx.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, self.shape)
        if np.any(hi <= lo):
            return None
        return slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])

    def ellipsoid(
        self,
        centre: np.ndarray,
        radii: np.ndarray,
        rot: np.ndarray | None = None,
        lobes: Lobes | None = None,
        margin: float = 1.35,
    ) -> np.ndarray:
        """Normalised radius of a (lobulated, rotated) ellipsoid: ``< 1`` inside.

        Computed only in the ellipsoid's bounding box; voxels beyond ``margin`` times its
        reach read ``inf``, so thresholds up to ``margin`` are exact.
        """
        centre = np.asarray(centre, dtype=np.float64)
        radii = np.asarray(radii, dtype=np.float64)
        reach = float(radii.max()) * (lobes.reach if lobes else 1.0) * margin
        out = np.full(self.shape, np.inf, dtype=_F)
        sl = self.box(centre, reach)
        if sl is None:
            return out
        d = (self.px[sl[:2]] - _F(centre[0]), self.py[sl[:2]] - _F(centre[1]))
        dz = self.pz[..., sl[2]] - _F(centre[2])
        r = np.eye(3) if rot is None else rot
        u, v, w = (
            (_F(r[0, k]) * d[0] + _F(r[1, k]) * d[1] + _F(r[2, k]) * dz) / _F(radii[k])
            for k in range(3)
        )
        rho = np.sqrt(u * u + v * v + w * w)
        if lobes is not None:
            inv = 1.0 / np.maximum(rho, _F(1e-6))
            bump = np.zeros_like(rho)
            for (a, b, c), amp in zip(lobes.dirs, lobes.amps, strict=True):
                cos = (u * _F(a) + v * _F(b) + w * _F(c)) * inv
                bump += _F(amp) * np.exp(_F(lobes.sharpness) * (cos - 1))
            rho = rho / np.maximum(1 + bump, _F(0.3))
        out[sl] = np.broadcast_to(rho, out[sl].shape)
        return out

    def ellipse(self, cx: float, cy: float, a: float, b: float) -> np.ndarray:
        """Normalised radius of an axial ellipse (a cylinder along z), shape ``(nx, ny, 1)``."""
        return np.sqrt(((self.px - _F(cx)) / _F(a)) ** 2 + ((self.py - _F(cy)) / _F(b)) ** 2)

    def coords(self, mask: np.ndarray, index: int) -> np.ndarray:
        """Patient-frame position of the ``index``-th True voxel of ``mask`` (C order)."""
        i, j, k = np.unravel_index(np.flatnonzero(mask)[index], self.shape)
        return np.array([self.px[i, j, 0], self.py[i, j, 0], self.pz[0, 0, k]], dtype=np.float64)


def smooth_noise(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    sigma_mm: float,
) -> np.ndarray:
    """Gaussian-correlated noise with unit standard deviation (FFT filtering of white noise)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    freqs = [np.fft.fftfreq(n, d) for n, d in zip(shape[:2], spacing[:2], strict=True)]
    freqs.append(np.fft.rfftfreq(shape[2], spacing[2]))
    k2 = freqs[0][:, None, None] ** 2 + freqs[1][None, :, None] ** 2 + freqs[2][None, None, :] ** 2
    kernel = np.exp(-2.0 * np.pi**2 * sigma_mm**2 * k2)
    field = np.fft.irfftn(np.fft.rfftn(white) * kernel, s=shape).astype(_F)
    field -= field.mean()
    std = float(field.std())
    return field / _F(std) if std > 0 else field


def blur3(array: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    """Separable 3-tap blur ``[w, 1 - 2w, w]`` per axis, edges repeated (scanner PSF)."""
    out = array
    for ax, w in enumerate(weights):
        if w <= 0 or out.shape[ax] < 2:
            continue
        src = np.moveaxis(out, ax, 0)
        res = src * _F(1 - 2 * w)
        res[1:] += _F(w) * src[:-1]
        res[:-1] += _F(w) * src[1:]
        res[0] += _F(w) * src[0]
        res[-1] += _F(w) * src[-1]
        out = np.moveaxis(res, 0, ax)
    return np.ascontiguousarray(out)

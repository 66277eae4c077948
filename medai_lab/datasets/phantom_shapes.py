"""Geometry for the CT phantoms: patient-frame grid, shapes, textures and the body wall.

All coordinates are millimetres in a *patient frame* with RAS+ axes (NIfTI convention):
+x toward the patient's right, +y anterior, +z superior. The frame is the world frame shifted
and rolled slightly about z, so each case lies a little differently on the couch.
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
        self.shape, self.affine = shape, affine
        self.centre = np.asarray(centre, dtype=np.float64)
        self.rot = rotation(roll)
        xw, yw, zw = (affine[a, a] * np.arange(n) + affine[a, 3] for a, n in enumerate(shape))
        self.xw, self.yw = xw.astype(_F)[:, None, None], yw.astype(_F)[None, :, None]
        dx, dy = xw[:, None] - self.centre[0], yw[None, :] - self.centre[1]
        c, s = self.rot[0, 0], self.rot[1, 0]
        self.px = (c * dx + s * dy).astype(_F)[:, :, None]
        self.py = (-s * dx + c * dy).astype(_F)[:, :, None]
        self.pz = (zw - self.centre[2]).astype(_F)[None, None, :]

    def box(self, centre: np.ndarray, half: float) -> tuple[slice, slice, slice] | None:
        """Index slices covering a cube of half-width ``half`` mm around a patient point."""
        corners = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T * half
        world = (np.asarray(centre) + corners) @ self.rot.T + self.centre
        idx = (world - self.affine[:3, 3]) / np.diag(self.affine)[:3]
        lo = np.maximum(np.floor(idx.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, self.shape)
        if np.any(hi <= lo):
            return None
        return slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])

    def ellipsoid(
        self,
        centre: np.ndarray | list[float],
        radii: np.ndarray | list[float],
        rot: np.ndarray | None = None,
        lobes: Lobes | None = None,
        margin: float = 1.4,
    ) -> np.ndarray:
        """Normalised radius of a (lobulated, rotated) ellipsoid: ``< 1`` inside.

        Computed only in the ellipsoid's bounding box; voxels beyond ``margin`` times its
        reach read ``inf``, so thresholds up to ``margin`` are exact.
        """
        centre = np.asarray(centre, dtype=np.float64)
        radii = np.asarray(radii, dtype=np.float64)
        out = np.full(self.shape, np.inf, dtype=_F)
        sl = self.box(centre, float(radii.max()) * (lobes.reach if lobes else 1.0) * margin)
        if sl is None:
            return out
        dx, dy = self.px[sl[:2]] - _F(centre[0]), self.py[sl[:2]] - _F(centre[1])
        dz = self.pz[..., sl[2]] - _F(centre[2])
        r = np.eye(3) if rot is None else rot
        u, v, w = (
            (_F(r[0, k]) * dx + _F(r[1, k]) * dy + _F(r[2, k]) * dz) / _F(radii[k])
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

    def circle(self, cx: float, cy: float, r: float) -> np.ndarray:
        return self.ellipse(cx, cy, r, r) < 1

    def coords(self, mask: np.ndarray, index: int) -> np.ndarray:
        """Patient-frame position of the ``index``-th True voxel of ``mask`` (C order)."""
        i, j, k = np.unravel_index(np.flatnonzero(mask)[index], self.shape)
        return np.array([self.px[i, j, 0], self.py[i, j, 0], self.pz[0, 0, k]], dtype=np.float64)


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], spacing: tuple[float, ...], sigma_mm: float
) -> np.ndarray:
    """Gaussian-correlated noise field with zero mean and unit standard deviation.

    White noise is drawn directly as a spectrum (half-space, as ``irfftn`` expects) and
    low-passed there: one inverse FFT per field instead of a forward and an inverse one.
    """
    freqs = [np.fft.fftfreq(n, d) for n, d in zip(shape[:-1], spacing[:-1], strict=True)]
    freqs.append(np.fft.rfftfreq(shape[-1], spacing[-1]))
    k2 = sum(f.reshape([-1 if i == a else 1 for i in range(3)]) ** 2 for a, f in enumerate(freqs))
    kernel = np.exp(-2.0 * np.pi**2 * sigma_mm**2 * k2).astype(_F)
    spec = rng.standard_normal(kernel.shape, dtype=_F) + 1j * rng.standard_normal(
        kernel.shape, dtype=_F
    )
    field = np.fft.irfftn(spec * kernel, s=shape, axes=(0, 1, 2)).astype(_F)
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


class Scene:
    """The canvas of one case: HU and label arrays, the grid, body proportions and textures."""

    def __init__(
        self,
        rng: np.random.Generator,
        affine: np.ndarray,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
    ) -> None:
        self.rng, self.spacing, self.affine = rng, spacing, affine
        fov = np.asarray(shape, dtype=float) * np.asarray(spacing, dtype=float)
        shift = np.array([rng.uniform(-0.03, 0.03) * fov[0], rng.uniform(-0.03, 0.03) * fov[1], 0])
        self.g = Grid(affine, shape, shift, roll=rng.uniform(-0.08, 0.08))
        self.img = np.full(shape, -1000.0, dtype=_F)  # air
        self.lab = np.zeros(shape, dtype=np.uint8)
        self.occupied = np.zeros(shape, dtype=bool)  # drawn structures later organs must avoid
        self.A = 0.40 * fov[0] * rng.uniform(0.92, 1.04)  # body semi-axes: lateral, anterior
        self.B = 0.30 * fov[1] * rng.uniform(0.92, 1.04)
        self.H = fov[2] / 2
        sp = float(min(spacing[:2]))
        self.fine = smooth_noise(rng, shape, spacing, 0.7 * sp)  # tissue grain
        self.med = smooth_noise(rng, shape, spacing, 2.5 * sp)  # vessels: |med| ~ 0 & |med2| ~ 0
        self.med2 = smooth_noise(rng, shape, spacing, 2.5 * sp)
        self.coarse = smooth_noise(rng, shape, spacing, 6.0 * sp)  # slow density changes

    def paint(
        self,
        mask: np.ndarray,
        hu: float | np.ndarray,
        tex: float = 0.0,
        label: int = 0,
        solid: bool = False,
    ) -> None:
        """Set HU (a number or a full-size array) and label where ``mask``; later paint wins."""
        mask = np.broadcast_to(mask, self.img.shape)
        vals = np.broadcast_to(hu, self.img.shape)[mask] if np.ndim(hu) else _F(hu)
        self.img[mask] = vals + _F(tex) * self.fine[mask] if tex else vals
        self.lab[mask] = label  # so a label always means "what is visible here"
        if solid:
            self.occupied |= mask


def draw_body(s: Scene) -> None:
    """Couch, fat and muscle layers, the body cavity and where the spine sits."""
    g, rng = s.g, s.rng
    # Carbon-fibre couch just below the body, in the world frame (it does not roll).
    top = g.centre[1] - 0.9 * s.B - 3.0
    table = (g.yw < top) & (g.yw > top - max(0.05 * s.B, 2.5 * s.spacing[1]))
    s.paint(table & (np.abs(g.xw - g.centre[0]) < 0.95 * s.A), -200, tex=20)
    a = s.A * (1 + rng.uniform(-0.04, 0.04) * g.pz / s.H)
    b = np.where(g.py < 0, 0.9 * s.B, s.B)  # supine: the back is flattened on the couch
    fat, muscle = rng.uniform(0.04, 0.10) * s.A, rng.uniform(0.035, 0.06) * s.A
    s.paint((g.px / a) ** 2 + (g.py / b) ** 2 <= 1, rng.uniform(-110, -90), tex=8)
    s.paint((g.px / (a - fat)) ** 2 + (g.py / (b - fat)) ** 2 <= 1, rng.uniform(40, 50), tex=6)
    s.Ac, s.Bc = s.A - fat - muscle, s.B - fat - muscle
    r = 0.13 * s.Ac * rng.uniform(0.9, 1.1)  # vertebral body radius
    y0 = -0.36 * s.B * rng.uniform(0.95, 1.05)
    s.spine = (y0, r)
    # The cavity reaches back beside the vertebra (paravertebral gutters); behind: back muscles.
    bc = np.where(g.py < 0, min(0.9 * s.B - fat - muscle, -y0 + 1.6 * r), s.Bc)
    ac = a - fat - muscle
    s.cavity = (g.px / ac) ** 2 + (g.py / bc) ** 2 <= 1
    t = max(0.035 * s.A, 1.5 * max(s.spacing[:2]))
    s.rib_ring = ((g.px / (ac + t)) ** 2 + (g.py / (bc + t)) ** 2 <= 1) & ~s.cavity


def draw_spine(s: Scene, aorta_hu: float) -> None:
    """Vertebral body (cortex, cancellous bone, discs), canal, arch and descending aorta."""
    g, rng, (y0, r) = s.g, s.rng, s.spine
    tc = max(1.5, 1.1 * max(s.spacing[:2]))  # cortex at least a voxel thick, or it vanishes
    s.vert_period = rng.uniform(2.8, 3.4) * r
    disc = ((g.pz / s.vert_period + rng.uniform()) % 1) < 0.2
    rc = 0.42 * r
    yc = y0 - 0.9 * r - rc - tc
    s.paint(g.ellipse(0, yc - rc - 0.35 * r, 0.16 * r, 0.45 * r) < 1, 600, tex=40, solid=True)
    s.paint(g.circle(0, yc, rc + 1.6 * tc), rng.uniform(650, 800), tex=40, solid=True)  # arch
    s.paint(g.circle(0, yc, rc), 15, tex=4, solid=True)  # cord and CSF
    body = g.ellipse(0, y0, r, 0.9 * r)
    s.paint(body < 1, rng.uniform(750, 950), tex=40, solid=True)  # cortical shell
    s.paint(body < 1 - tc / r, rng.uniform(220, 280), tex=25)  # cancellous bone
    s.paint((body < 1) & disc, 80, tex=6)  # intervertebral disc
    ra = 0.085 * s.Ac
    # Descending aorta: left-anterolateral to the spine (the patient's left is -x in RAS).
    s.paint(g.circle(-0.85 * (r + ra), y0 + 0.6 * r, ra), aorta_hu, tex=6, solid=True)


def draw_ribs(s: Scene, zmin: float) -> None:
    """Oblique rib arcs in the chest wall; none at the sternum or over the spine."""
    g = s.g
    phi = np.arctan2(g.py / s.Bc, g.px / s.Ac)  # +pi/2 anterior, -pi/2 posterior
    sector = (np.abs(phi - np.pi / 2) > 0.55) & (np.abs(phi + np.pi / 2) > 0.35)
    # Ribs run downward from back to front, so one axial slice cuts several of them.
    phase = (g.pz + 0.9 * s.vert_period * (1 + np.sin(phi))) / s.vert_period + s.rng.uniform()
    ribs = s.rib_ring & sector & ((phase % 1) < 0.32) & (g.pz > zmin)
    s.paint(ribs, s.rng.uniform(400, 550), tex=40, solid=True)


def draw_airway(s: Scene, z_carina: float) -> None:
    """Oesophagus and trachea (down to the carina) in front of the spine."""
    g, (y0, r) = s.g, s.spine
    r_es, r_tr = 0.06 * s.Ac, 0.075 * s.Ac
    y_es = y0 + r + 1.2 * r_es
    free = s.cavity & s.above & ~s.occupied  # the chest only: not below the diaphragm
    s.paint(g.circle(-0.25 * r, y_es, r_es) & free, 35, tex=5, solid=True)
    y_tr = y_es + r_es + 1.5 * r_tr
    above = (g.pz > z_carina) & free
    s.paint(g.circle(0, y_tr, 1.35 * r_tr) & above, 40, tex=5, solid=True)
    s.paint(g.circle(0, y_tr, r_tr) & above, -1000, tex=5, solid=True)

"""Seeded, offline CT-like phantoms for lung, liver and heart segmentation.

Each case is drawn in world millimetres (RAS+: +x patient right, +y anterior, +z superior) from
simple shapes, then blurred a little (scanner PSF) and given Gaussian noise. The array is stored
like a real axial CT: the affine is ``diag(-sx, -sy, sz)``, so array axes point L, P, S (DICOM's
LPS). Labels are exactly the voxels each structure was drawn into. Same seed, same bytes.
"""

from __future__ import annotations

import json
import operator
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medai_lab.datasets.phantom_shapes import Grid, blur3, random_lobes, rotation, smooth_noise
from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

TASKS: tuple[str, ...] = ("lung", "liver", "heart")
LABELS: dict[str, dict[int, str]] = {
    "lung": {0: "background", 1: "lung", 2: "nodule"},
    "liver": {0: "background", 1: "liver", 2: "tumour"},
    "heart": {0: "background", 1: "heart", 2: "left_atrium"},
}
_HU_RANGE = (-1024, 3071)  # 12-bit CT range: fits DICOM storage with intercept -1024
_FORMATS = ("nifti", "dicom")


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxel -> RAS+ affine of an axial LPS-stored grid whose centre is the world origin."""
    (nx, ny, nz), (sx, sy, sz) = shape, spacing
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[:3, 3] = [sx * (nx - 1) / 2, sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
    return affine


class _Scene:
    """The canvas of one case: HU and label arrays, the grid, body proportions and textures."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int, int], spacing) -> None:
        self.rng, self.spacing = rng, spacing
        self.affine = phantom_affine(shape, spacing)
        fov = np.asarray(shape, dtype=float) * np.asarray(spacing, dtype=float)
        shift = np.array([rng.uniform(-0.03, 0.03) * fov[0], rng.uniform(-0.03, 0.03) * fov[1], 0])
        self.g = Grid(self.affine, shape, shift, roll=rng.uniform(-0.08, 0.08))
        self.img = np.full(shape, -1000.0, dtype=np.float32)
        self.lab = np.zeros(shape, dtype=np.uint8)
        self.occupied = np.zeros(shape, dtype=bool)  # drawn structures later organs must avoid
        self.A = 0.40 * fov[0] * rng.uniform(0.92, 1.04)  # body semi-axes (lateral, AP)
        self.B = 0.30 * fov[1] * rng.uniform(0.92, 1.04)
        self.H = fov[2] / 2
        sp = float(min(spacing[:2]))
        self.fine = smooth_noise(rng, shape, spacing, 0.7 * sp)  # tissue grain
        self.med = smooth_noise(rng, shape, spacing, 2.5 * sp)  # vessels: |med| ~ 0 & |med2| ~ 0
        self.med2 = smooth_noise(rng, shape, spacing, 2.5 * sp)
        self.coarse = smooth_noise(rng, shape, spacing, 6.0 * sp)  # slow density changes

    def paint(self, mask, hu, tex: float = 0.0, label: int = 0, solid: bool = False) -> None:
        """Set HU (a number or a full-size array) and label where ``mask``; later paint wins."""
        mask = np.broadcast_to(mask, self.img.shape)
        vals = np.broadcast_to(hu, self.img.shape)[mask] if np.ndim(hu) else np.float32(hu)
        self.img[mask] = vals + tex * self.fine[mask] if tex else vals
        self.lab[mask] = label  # so a label always means "what is visible here"
        if solid:
            self.occupied |= mask

    def ellipse_mask(self, cx: float, cy: float, r: float) -> np.ndarray:
        return self.g.ellipse(cx, cy, r, r) < 1


def _body(s: _Scene) -> None:
    """Couch, skin-fat-muscle layers and the body cavity (``s.cavity``)."""
    g, rng = s.g, s.rng
    # Carbon-fibre couch just below the body, in the world frame (it does not roll).
    top = s.g.centre[1] - 0.9 * s.B - 3.0
    table = (g.yw < top) & (g.yw > top - max(0.05 * s.B, 2.5 * s.spacing[1]))
    s.paint(table & (np.abs(g.xw - g.centre[0]) < 0.95 * s.A), -200, tex=20)
    a = s.A * (1 + rng.uniform(-0.04, 0.04) * g.pz / s.H)
    b = np.where(g.py < 0, 0.9 * s.B, s.B)  # supine: the back is flattened on the couch
    fat, muscle = rng.uniform(0.05, 0.12) * s.A, rng.uniform(0.05, 0.08) * s.A

    def inside(d: float) -> np.ndarray:
        return (g.px / (a - d)) ** 2 + (g.py / (b - d)) ** 2 <= 1

    s.paint(inside(0.0), rng.uniform(-110, -90), tex=8)  # subcutaneous fat
    s.paint(inside(fat), rng.uniform(40, 50), tex=6)  # muscle wall
    s.cavity = inside(fat + muscle)
    s.rib_ring = inside(fat + 0.45 * muscle) & ~s.cavity
    s.Ac, s.Bc, s.Bcp = s.A - fat - muscle, s.B - fat - muscle, 0.9 * s.B - fat - muscle


def _spine(s: _Scene, aorta_hu: float) -> None:
    """Vertebral body (cortex, cancellous bone, discs), canal, arch and descending aorta."""
    g, rng = s.g, s.rng
    r = 0.15 * s.Ac * rng.uniform(0.9, 1.1)
    y0 = -s.Bcp + 0.6 * r
    tc = max(1.5, 1.1 * max(s.spacing[:2]))  # cortex at least a voxel thick, or it vanishes
    s.spine = (y0, r)
    s.vert_period = rng.uniform(2.8, 3.4) * r
    disc = ((g.pz / s.vert_period + rng.uniform()) % 1) < 0.2
    rc = 0.42 * r
    yc = y0 - 0.9 * r - rc - tc
    s.paint(g.ellipse(0, yc - rc - 0.5 * r, 0.16 * r, 0.7 * r) < 1, 600, tex=40, solid=True)
    s.paint(s.ellipse_mask(0, yc, rc + 1.6 * tc), rng.uniform(650, 800), tex=40, solid=True)
    s.paint(s.ellipse_mask(0, yc, rc), 15, tex=4, solid=True)  # cord and CSF
    body = g.ellipse(0, y0, r, 0.9 * r)
    s.paint(body < 1, rng.uniform(750, 950), tex=40, solid=True)  # cortical shell
    s.paint(body < 1 - tc / r, rng.uniform(220, 280), tex=25)  # cancellous bone
    s.paint((body < 1) & disc, 80, tex=6)  # intervertebral disc
    ra = 0.085 * s.Ac
    # Descending aorta: left-anterolateral to the spine (patient left is -x in RAS).
    s.paint(s.ellipse_mask(-0.85 * (r + ra), y0 + 0.5 * r, ra), aorta_hu, tex=6, solid=True)


def _ribs(s: _Scene, zmin: float) -> None:
    """Oblique rib arcs in the chest wall; none at the sternum or over the spine."""
    g = s.g
    phi = np.arctan2(g.py / s.Bc, g.px / s.Ac)  # +pi/2 anterior, -pi/2 posterior
    sector = (np.abs(phi - np.pi / 2) > 0.55) & (np.abs(phi + np.pi / 2) > 0.35)
    # Ribs run downward from back to front, so one axial slice cuts several of them.
    phase = (g.pz + 0.9 * s.vert_period * (1 + np.sin(phi))) / s.vert_period + s.rng.uniform()
    ribs = s.rib_ring & sector & ((phase % 1) < 0.32) & (g.pz > zmin)
    s.paint(ribs, s.rng.uniform(400, 550), tex=40, solid=True)


def _mediastinum(s: _Scene, z_carina: float) -> None:
    """Oesophagus and trachea (down to the carina) in front of the spine."""
    g, (y0, r) = s.g, s.spine
    r_es, r_tr = 0.06 * s.Ac, 0.075 * s.Ac
    y_es = y0 + r + 1.2 * r_es
    s.paint(s.ellipse_mask(-0.25 * r, y_es, r_es) & s.cavity, 35, tex=5, solid=True)
    y_tr = y_es + r_es + 1.5 * r_tr
    above = g.pz > z_carina
    s.paint(s.ellipse_mask(0, y_tr, 1.35 * r_tr) & above & s.cavity, 40, tex=5, solid=True)
    s.paint(s.ellipse_mask(0, y_tr, r_tr) & above & s.cavity, -1000, tex=5, solid=True)


def _heart(s: _Scene, zc: float, contrast: bool, labelled: bool) -> float:
    """Heart: myocardium, four chambers (left atrium posterior) and great vessels.

    Returns the z of the heart's top, where the carina sits above.
    """
    g, rng = s.g, s.rng
    r, rz = 0.36 * s.Ac * rng.uniform(0.9, 1.1), 0.42 * s.H * rng.uniform(0.9, 1.1)
    radii = np.array([1.15 * r, 0.95 * r, rz])
    c = np.array([-0.15 * s.Ac + rng.uniform(-0.05, 0.05) * s.Ac, 0.15 * s.Bc, zc])
    # Long axis toward the patient's left, anterior and inferior (apex); yaw 135 deg = (-x, +y).
    rot = rotation(np.deg2rad(135) + rng.uniform(-0.15, 0.15), rng.uniform(0.25, 0.45))
    env = g.ellipsoid(c, radii, rot, random_lobes(rng, 4, 0.04))

    def chamber(off: tuple, rel: tuple) -> np.ndarray:
        return g.ellipsoid(c + rot @ (np.array(off) * radii), np.array(rel) * radii, rot)

    # Local axes: +x apex, +y left-posterior, +z base-superior (see the yaw above).
    lv, rv = (
        chamber((0.15, 0.25, -0.05), (0.6, 0.38, 0.55)),
        chamber((0.05, -0.45, 0), (0.55, 0.24, 0.5)),
    )
    ra, la = (
        chamber((-0.5, -0.3, 0.1), (0.32, 0.3, 0.4)),
        chamber((-0.55, 0.35, 0.3), (0.3, 0.28, 0.35)),
    )
    free = ~s.occupied & s.above & s.cavity
    s.paint(((env < 1.12) | (la < 1.35)) & free, -90, tex=6, solid=True)  # epicardial fat
    heart = ((env < 1) | (la < 1.2)) & free
    s.paint(heart, rng.uniform(40, 50), tex=5, label=int(labelled), solid=True)
    inner = heart & (env < 0.85)  # chambers keep a myocardial wall
    blood = (rng.uniform(280, 320), rng.uniform(230, 270)) if contrast else (40.0, 40.0)
    s.paint((lv < 1) & inner, blood[0], tex=8, label=int(labelled))
    s.paint((rv < 1) & inner & (lv > 1.25), blood[1], tex=8, label=int(labelled))
    s.paint((ra < 1) & inner & (lv > 1.2) & (rv > 1.15), blood[1], tex=8, label=int(labelled))
    la_pool = (la < 1) & heart & (lv > 1.2) & (ra > 1.15)
    s.paint(la_pool, blood[0] - 10, tex=8, label=2 * int(labelled))
    top = c[2] + 0.6 * rz
    for dx, dy, rad, hu in ((0.35, 0.0, 0.3, 0), (-0.25, 0.55, 0.27, 1), (0.85, -0.1, 0.2, 1)):
        # Ascending aorta, pulmonary trunk and superior vena cava rising from the base.
        vessel = s.ellipse_mask(c[0] + dx * r, c[1] + dy * r, rad * r) & (g.pz > top)
        s.paint(vessel & ~s.occupied & s.cavity, blood[hu], tex=6, solid=True)
    return c[2] + rz


def _lungs(s: _Scene, zc: float, rz: float, vessel_hu: float, task: str) -> None:
    """Two lobulated lungs above the diaphragm with vessels; nodules for the lung task."""
    g, rng = s.g, s.rng
    rho = np.full(s.img.shape, np.inf, dtype=np.float32)
    for side in (1, -1):  # +x is the patient's right: the right lung is the larger one
        c = [side * 0.5 * s.Ac, rng.uniform(-0.1, 0.0) * s.Bc, zc]
        radii = [(0.55 if side > 0 else 0.5) * s.Ac, s.Bc, rz]
        field = g.ellipsoid(c, radii, rotation(rng.uniform(-0.1, 0.1)), random_lobes(rng, 6, 0.05))
        np.minimum(rho, field, out=rho)
    diaphragm = g.pz > s.zd + max(2.0, s.spacing[2])
    lung = (rho < 1) & s.cavity & diaphragm & ~s.occupied
    lab = int(task == "lung")
    # Parenchyma is denser toward the back (gravity-dependent), with slow texture.
    hu = rng.uniform(-880, -830) + 25 * s.coarse + 50 * np.clip(-g.py / s.Bc, 0, 1)
    s.paint(lung, hu, tex=12, label=lab)
    t = 0.10 + 0.12 * np.clip(1 - np.abs(g.px) / s.Ac, 0, 1)  # thicker vessels near the hila
    vessels = lung & (np.abs(s.med) < t) & (np.abs(s.med2) < t)
    s.paint(vessels, vessel_hu, tex=10, label=lab)
    if task != "lung":
        return
    cand = lung & ~vessels & (rho < 0.8)
    cand = cand if cand.any() else lung
    for _ in range(int(rng.integers(1, 4))):
        p = g.coords(cand, int(rng.integers(np.count_nonzero(cand))))
        radii = rng.uniform(0.05, 0.13) * s.Ac * rng.uniform(0.85, 1.15, 3)
        rot = rotation(*rng.uniform(-np.pi, np.pi, 3))
        nodule = g.ellipsoid(p, radii, rot, random_lobes(rng, 5, rng.uniform(0, 0.25))) < 1
        s.paint(nodule & lung, rng.uniform(0, 50), tex=10, label=2)


def _abdomen(s: _Scene) -> None:
    """Upper abdomen below the diaphragm: liver with tumours, spleen, stomach, kidneys."""
    g, rng = s.g, s.rng
    below = s.cavity & ~s.above
    H, Ac, Bc = s.H, s.Ac, s.Bc
    zr = s.ztop
    rot, lobes = (
        rotation(rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1)),
        random_lobes(rng, 6, 0.07),
    )
    main = g.ellipsoid(
        [0.38 * Ac, -0.05 * Bc, zr - 0.75 * H], [0.62 * Ac, 0.85 * Bc, 0.9 * H], rot, lobes
    )
    rot, lobes = rotation(rng.uniform(-0.2, 0.2)), random_lobes(rng, 4, 0.08)
    left = g.ellipsoid(
        [-0.1 * Ac, 0.38 * Bc, zr - 0.4 * H], [0.5 * Ac, 0.42 * Bc, 0.4 * H], rot, lobes
    )
    liver_shape = ((main < 1) | (left < 1)) & below
    # Bowel loops in mesenteric fat, with a little gas, fill the rest of the abdomen.
    loops = s.coarse > 0.1
    s.paint(below, np.where(loops, 35, -95), tex=8)
    s.paint(below & loops & (s.med2 > 2.3), -950, tex=20)
    s.paint(s.cavity & s.above, 40, tex=5)  # diaphragm and lower mediastinum
    y0, r = s.spine
    r_ivc = 0.085 * Ac  # inferior vena cava: right-anterior of the spine
    s.paint(s.ellipse_mask(0.9 * (r + r_ivc), y0 + r, r_ivc), 110, tex=6, solid=True)
    spleen = g.ellipsoid(
        [-0.6 * Ac, -0.35 * Bc, zr - 0.5 * H],
        [0.22 * Ac, 0.38 * Bc, 0.4 * H],
        rotation(0.5 + rng.uniform(-0.3, 0.3)),
        random_lobes(rng, 4, 0.08),
    )
    s.paint((spleen < 1) & below & ~liver_shape & ~s.occupied, 48, tex=5, solid=True)
    sc = np.array([-0.3 * Ac, 0.3 * Bc, zr - 0.35 * H])
    srad = np.array([0.28 * Ac, 0.3 * Bc, 0.4 * H])
    stomach = g.ellipsoid(sc, srad, rotation(rng.uniform(-0.3, 0.3)), random_lobes(rng, 4, 0.1))
    st = below & ~liver_shape & ~s.occupied
    s.paint((stomach < 1) & st, 40, tex=5, solid=True)  # wall
    s.paint((stomach < 0.8) & st, 15, tex=4)  # fluid; gas floats anteriorly (supine)
    s.paint((stomach < 0.8) & st & (g.py > sc[1] + 0.25 * srad[1]), -1000, tex=5)
    for side, dz in ((1, 1.15), (-1, 1.0)):  # the right kidney sits lower, under the liver
        kid = g.ellipsoid(
            [side * 0.42 * Ac, -0.5 * Bc, zr - dz * H],
            [0.16 * Ac, 0.26 * Bc, 0.36 * H],
            rotation(side * 0.5 + rng.uniform(-0.2, 0.2)),
        )
        free = below & ~s.occupied
        s.paint((kid < 1.3) & free, -90, tex=6, solid=True)  # perirenal fat
        s.paint((kid < 1) & free, 140, tex=6)  # cortex (enhancing)
        s.paint((kid < 0.6) & free, 70, tex=6)  # medulla and sinus
    gb = g.ellipsoid([0.2 * Ac, 0.35 * Bc, zr - 1.1 * H], [0.12 * Ac, 0.16 * Bc, 0.22 * H])
    s.paint((gb < 1) & below & ~s.occupied, 10, tex=4, solid=True)  # gallbladder
    liver = liver_shape & ~s.occupied
    s.paint(liver, rng.uniform(55, 65) + 4 * s.coarse, tex=5, label=1, solid=True)
    vessels = liver & (np.abs(s.med) < 0.12) & (np.abs(s.med2) < 0.12)
    s.paint(vessels, 110, tex=8, label=1)  # portal and hepatic veins
    cand = liver & ~vessels & (main < 0.75)
    cand = cand if cand.any() else liver
    for _ in range(int(rng.integers(1, 4))):
        p = g.coords(cand, int(rng.integers(np.count_nonzero(cand))))
        radii = rng.uniform(0.07, 0.16) * Ac * rng.uniform(0.85, 1.15, 3)
        tumour = (
            g.ellipsoid(p, radii, rotation(rng.uniform(-np.pi, np.pi)), random_lobes(rng, 5, 0.15))
            < 1
        )
        s.paint(tumour & liver, rng.uniform(20, 35), tex=8, label=2)
    s.occupied |= below  # nothing from the chest reaches under the diaphragm


def make_phantom(
    task: str,
    seed: int,
    shape: tuple[int, int, int] = (96, 96, 64),
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5),
) -> tuple[Volume, Volume]:
    """Generate one CT-like case.

    Parameters
    ----------
    task
        ``"lung"`` (lungs + nodules), ``"liver"`` (liver + tumours) or ``"heart"`` (heart +
        left atrium, contrast-enhanced).
    seed
        Non-negative integer; the same seed gives byte-identical volumes.
    shape, spacing
        Grid size (voxels, at least 16 each) and voxel size (mm) along x, y, z.

    Returns
    -------
    (image, label)
        ``image``: int16 HU; ``label``: uint8 with :data:`LABELS` ``[task]`` values. Both share
        one axial affine ``diag(-sx, -sy, sz)`` (LPS storage) centred on the world origin.
    """
    task = _check_task(task)
    seed = _check_seed(seed)
    shape, spacing = _check_grid(shape, spacing)
    # The task is mixed into the stream so "lung seed 0" and "heart seed 0" share no draws.
    rng = np.random.default_rng([seed, TASKS.index(task)])
    s = _Scene(rng, shape, spacing)
    _body(s)
    s.paint(s.cavity, 35, tex=6)  # mediastinal and abdominal soft tissue, refined below
    contrast = {"lung": 40.0, "liver": 160.0, "heart": rng.uniform(280, 320)}[task]
    _spine(s, aorta_hu=contrast)
    H = s.H
    # Diaphragm: a dome, highest on the right (liver side) and at the front.
    s.ztop = {"lung": rng.uniform(-0.75, -0.55), "liver": rng.uniform(0.45, 0.65),
              "heart": rng.uniform(-0.95, -0.8)}[task] * H  # fmt: skip
    dome = ((s.g.px - 0.3 * s.Ac) / s.Ac) ** 2 + ((s.g.py - 0.25 * s.Bc) / s.Bc) ** 2
    s.zd = s.ztop - 0.9 * H * dome
    s.above = np.broadcast_to(s.g.pz > s.zd, shape)
    _ribs(s, zmin=-0.3 * H if task == "liver" else -np.inf)
    if task == "liver":
        _abdomen(s)
    heart_z = s.ztop + {"lung": 0.3, "liver": 0.35, "heart": 0.75}[task] * H
    z_top = _heart(s, heart_z, contrast=task == "heart", labelled=task == "heart")
    _mediastinum(s, z_carina=z_top + 0.1 * H)
    band = (np.abs(s.g.px) < 0.13 * s.Ac) & (s.g.py > s.spine[0] - 0.5 * s.spine[1])
    s.paint(band & s.cavity & s.above & ~s.occupied, -80, tex=10, solid=True)  # mediastinal fat
    s.paint(s.cavity & ~s.above & ~s.occupied, 55, tex=5, solid=True)  # liver/spleen under dome
    _lungs(s, zc=s.ztop + 1.1 * H, rz=1.5 * H, vessel_hu=contrast * 0.8, task=task)

    # Scanner: slight blur (thicker slices blur more along z), then quantum noise.
    img = blur3(s.img, (0.1, 0.1, 0.15))
    img += rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(10, 15))
    image = np.clip(np.rint(img), *_HU_RANGE).astype(np.int16)
    for value, name in LABELS[task].items():
        if value and not np.any(s.lab == value):
            raise MedaiError(f"grid {shape} is too small for a {task} phantom: no {name} voxels")
    desc = f"MedAI Lab synthetic {task} phantom, seed {seed}"
    meta = {"modality": "CT", "source": "phantom", "description": desc, "task": task, "seed": seed}
    label_meta = {**meta, "modality": "SEG", "labels": {str(k): v for k, v in LABELS[task].items()}}
    return Volume(image, s.affine.copy(), meta), Volume(s.lab, s.affine.copy(), label_meta)


def write_phantom_dataset(
    out_dir: str | os.PathLike[str],
    task: str,
    cases: int,
    *,
    fmt: str = "nifti",
    seed: int = 0,
    shape: tuple[int, int, int] = (96, 96, 64),
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5),
    progress: bool = True,
) -> Path:
    """Write ``cases`` phantoms as a Medical Segmentation Decathlon folder.

    Layout: ``imagesTr/<id>.nii.gz`` (or a DICOM series folder ``imagesTr/<id>/`` when
    ``fmt="dicom"``), ``labelsTr/<id>.nii.gz`` and ``dataset.json``; ``<id>`` is
    ``f"{task}_{i:03d}"`` and case ``i`` uses seed ``seed + i``. Everything is written to a
    hidden sibling folder and renamed into place, so ``out_dir`` is complete or absent.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from tqdm import tqdm

    task = _check_task(task)
    seed = _check_seed(seed)
    shape, spacing = _check_grid(shape, spacing)
    if fmt not in _FORMATS:
        raise MedaiError(f"unknown phantom format {fmt!r}; choose one of: {', '.join(_FORMATS)}")
    if isinstance(cases, bool) or not isinstance(cases, int | np.integer) or cases < 1:
        raise MedaiError(f"number of cases must be a whole number >= 1, got {cases!r}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedaiError(f"output folder is not empty: {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        training = []
        for i in tqdm(
            range(int(cases)), desc=f"{task} phantoms", unit="case", disable=not progress
        ):
            cid = f"{task}_{i:03d}"
            image, label = make_phantom(task, seed + i, shape, spacing)
            if fmt == "dicom":
                from medai_lab.io.dicom_write import write_dicom_series

                write_dicom_series(
                    image, tmp / "imagesTr" / cid, modality="CT",
                    series_description=f"MedAI Lab {task} phantom", patient_id=f"PHANTOM-{cid}",
                    patient_name=f"Phantom^{cid}", uid_seed=f"medai-lab-phantom/{task}/{seed + i}",
                )  # fmt: skip
                image_ref = f"./imagesTr/{cid}"
            else:
                from medai_lab.io.nifti import save_nifti

                save_nifti(image, tmp / "imagesTr" / f"{cid}.nii.gz")
                image_ref = f"./imagesTr/{cid}.nii.gz"
            from medai_lab.io.nifti import save_nifti

            save_nifti(label, tmp / "labelsTr" / f"{cid}.nii.gz")
            training.append({"image": image_ref, "label": f"./labelsTr/{cid}.nii.gz"})
        info = _dataset_json(task, training, fmt=fmt, seed=seed, shape=shape, spacing=spacing)
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above); os.replace cannot replace a directory on Windows
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _dataset_json(task: str, training: list[dict[str, str]], **params: object) -> dict:
    return {
        "name": f"MedAI-Lab-Phantom-{task.capitalize()}",
        "description": f"Synthetic CT-like {task} segmentation phantom (no patient data), "
        "generated by medai_lab.datasets.phantom",
        "reference": "MedAI Lab phantom",
        "licence": "CC0-1.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {str(k): v for k, v in LABELS[task].items()},
        "numTraining": len(training),
        "numTest": 0,
        "training": training,
        "test": [],
        "phantom": {"task": task, **params},
    }


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise MedaiError(f"unknown phantom task {task!r}; choose one of: {', '.join(TASKS)}")
    return task


def _check_seed(seed: int) -> int:
    try:
        value = operator.index(seed)
    except TypeError:
        raise MedaiError(f"seed must be a whole number >= 0, got {seed!r}") from None
    if isinstance(seed, bool) or value < 0:
        raise MedaiError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(value)


def _check_grid(shape, spacing) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    try:
        shp = tuple(operator.index(n) for n in shape)
        spc = tuple(float(v) for v in spacing)
    except TypeError:
        raise MedaiError(
            f"shape must be 3 whole numbers and spacing 3 numbers: {shape}, {spacing}"
        ) from None
    if len(shp) != 3 or min(shp) < 16:
        raise MedaiError(f"phantom shape must be 3 sizes of at least 16 voxels, got {shape}")
    if len(spc) != 3 or not all(np.isfinite(v) and v > 0 for v in spc):
        raise MedaiError(f"phantom spacing must be 3 positive sizes in mm, got {spacing}")
    return shp, spc  # type: ignore[return-value]

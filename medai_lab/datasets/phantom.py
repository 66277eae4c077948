"""Seeded, offline CT-like phantoms for the catalogue's tasks (lung, liver, heart, ...).

A task's ``phantom`` recipe (see :mod:`medai_lab.catalogue`) names the scene drawn and which
drawn structure each of its labels is, so a new task needs no code when a scene already draws
its organ (e.g. the spleen in the ``liver`` scene).

Each case is drawn in world millimetres (RAS+: +x patient right, +y anterior, +z superior) from
simple shapes, then blurred a little (scanner PSF) and given Gaussian noise. The array is stored
like a real axial CT: the affine is ``diag(-sx, -sy, sz)``, so array axes point L, P, S (DICOM's
LPS). Labels are exactly the voxels each structure was drawn into. Same seed, same bytes.
"""

from __future__ import annotations

import json
import operator
import os
from pathlib import Path

import numpy as np

from medai_lab import catalogue
from medai_lab.atomic import atomic_dir
from medai_lab.datasets.phantom_recipe import SCENES, STRUCTURES, phantom_recipe
from medai_lab.datasets.phantom_shapes import (
    Scene,
    blur3,
    draw_airway,
    draw_body,
    draw_ribs,
    draw_spine,
    random_lobes,
    rotation,
)
from medai_lab.errors import MedaiError
from medai_lab.io.volume import Volume

_HU_RANGE = (-1024, 3071)  # 12-bit CT range: fits DICOM storage with intercept -1024
_FORMATS = ("nifti", "dicom")


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxel -> RAS+ affine of an axial, LPS-stored grid whose centre is the world origin."""
    (nx, ny, nz), (sx, sy, sz) = shape, spacing
    affine = np.diag([-sx, -sy, sz, 1.0])
    affine[:3, 3] = [sx * (nx - 1) / 2, sy * (ny - 1) / 2, -sz * (nz - 1) / 2]
    return affine


def _heart(s: Scene, zc: float, contrast: bool) -> None:
    """Heart: myocardium, four chambers (left atrium posterior) and the great vessels."""
    g, rng = s.g, s.rng
    a = rng.uniform(0.5, 0.58) * s.Ac
    radii = np.array([a, 0.6 * a, 0.4 * s.H * rng.uniform(0.9, 1.1)])
    # Long axis toward the patient's left, front and feet (apex): yaw 145 deg is (-x, +y).
    yaw = np.deg2rad(145) + rng.uniform(-0.12, 0.12)
    depth = np.hypot(radii[0] * np.sin(yaw), radii[1] * np.cos(yaw))  # AP half-extent
    c = np.array([(rng.uniform(-0.04, 0.04) - 0.15) * s.Ac, 0.95 * s.Bc - depth, zc])
    rot = rotation(yaw, rng.uniform(0.25, 0.45))
    env = g.ellipsoid(c, radii, rot, random_lobes(rng, 4, 0.04))

    def chamber(off: tuple, rel: tuple) -> np.ndarray:
        return g.ellipsoid(c + rot @ (np.array(off) * radii), np.array(rel) * radii, rot)

    # Local axes: +x apex, +y mostly posterior (left-posterior), +z toward the base, superior.
    lv = chamber((0.2, 0.15, -0.05), (0.62, 0.55, 0.6))
    rv = chamber((0.05, -0.5, -0.05), (0.58, 0.38, 0.55))
    ra = chamber((-0.55, -0.35, 0.05), (0.38, 0.42, 0.45))
    la = chamber((-0.45, 0.45, 0.3), (0.38, 0.42, 0.42))
    free = ~s.occupied & s.above & s.cavity
    s.paint(((env < 1.12) | (la < 1.35)) & free, -90, tex=6, solid=True)  # epicardial fat
    heart = ((env < 1) | (la < 1.2)) & free
    lab = STRUCTURES["heart"]
    s.paint(heart, rng.uniform(40, 50), tex=5, label=lab, solid=True)  # myocardium
    inner = heart & (env < 0.9)  # chambers keep a wall
    left, right = (rng.uniform(280, 320), rng.uniform(220, 260)) if contrast else (40.0, 40.0)
    s.paint((lv < 1) & inner, left, tex=8, label=lab)
    s.paint((rv < 1) & inner & (lv > 1.25), right, tex=8, label=lab)  # septum between
    s.paint((ra < 1) & inner & (lv > 1.2) & (rv > 1.15), right, tex=8, label=lab)
    la_pool = (la < 1) & heart & (lv > 1.2) & (ra > 1.15)
    s.paint(la_pool, left - 10, tex=8, label=STRUCTURES["left_atrium"])
    top = c[2] + 0.6 * radii[2]
    # Ascending aorta, pulmonary trunk and superior vena cava rising from the base.
    for dx, dy, rad, hu in (
        (0.3, 0.05, 0.24, left),
        (-0.2, 0.35, 0.22, right),
        (0.6, -0.1, 0.16, right),
    ):
        vessel = g.circle(c[0] + dx * a, c[1] + dy * a, rad * a) & (g.pz > top)
        s.paint(vessel & ~s.occupied & s.cavity, hu, tex=6, solid=True)


def _lungs(s: Scene, zc: float, rz: float, vessel_hu: float, nodules: bool) -> None:
    """Two lobulated lungs above the diaphragm with vessels; nodules for the lung task."""
    g, rng = s.g, s.rng
    rho = np.full(s.img.shape, np.inf, dtype=np.float32)
    for side in (1, -1):  # +x is the patient's right: the right lung is the larger one
        c = [side * 0.5 * s.Ac, rng.uniform(-0.1, 0.0) * s.Bc, zc]
        radii = [(0.55 if side > 0 else 0.5) * s.Ac, s.Bc, rz]
        field = g.ellipsoid(c, radii, rotation(rng.uniform(-0.1, 0.1)), random_lobes(rng, 6, 0.05))
        np.minimum(rho, field, out=rho)
    above = g.pz > s.zd + max(2.0, s.spacing[2])  # leave the diaphragm muscle
    lung = (rho < 1) & s.cavity & above & ~s.occupied
    lab = STRUCTURES["lung"]
    # Parenchyma is denser toward the back (gravity-dependent), with slow texture.
    hu = rng.uniform(-880, -830) + 25 * s.coarse + 50 * np.clip(-g.py / s.Bc, 0, 1)
    s.paint(lung, hu, tex=12, label=lab)
    t = 0.10 + 0.12 * np.clip(1 - np.abs(g.px) / s.Ac, 0, 1)  # thicker vessels near the hila
    vessels = lung & (np.abs(s.med) < t) & (np.abs(s.med2) < t)
    s.paint(vessels, vessel_hu, tex=10, label=lab)
    if nodules:
        cand = lung & ~vessels & (rho < 0.8)
        _lesions(s, lung, cand, (0.1, 0.22), (0, 50), 0.25, STRUCTURES["nodule"])


def _lesions(
    s: Scene, organ: np.ndarray, cand: np.ndarray, size: tuple, hu: tuple, lobe: float, label: int
) -> None:
    """1-3 lobulated lesions (structure ``label``) centred in ``cand``, clipped to ``organ``."""
    rng = s.rng
    cand = cand if cand.any() else organ  # a centre voxel in the organ: never an empty label
    for _ in range(int(rng.integers(1, 4))):
        p = s.g.coords(cand, int(rng.integers(np.count_nonzero(cand))))
        radii = rng.uniform(*size) * s.Ac * rng.uniform(0.85, 1.15, 3)
        rot = rotation(*rng.uniform(-np.pi, np.pi, 3))
        lesion = s.g.ellipsoid(p, radii, rot, random_lobes(rng, 5, rng.uniform(0, lobe))) < 1
        s.paint(lesion & organ, rng.uniform(*hu), tex=10, label=label)


def _abdomen(s: Scene) -> None:
    """Upper abdomen under the diaphragm: liver with tumours, spleen, stomach, kidneys."""
    g, rng, H, Ac, Bc, zr = s.g, s.rng, s.H, s.Ac, s.Bc, s.ztop
    below = s.cavity & ~s.above
    rot = rotation(rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1))
    lobes = random_lobes(rng, 6, 0.07)
    main = g.ellipsoid(
        [0.38 * Ac, -0.05 * Bc, zr - 0.75 * H], [0.62 * Ac, 0.85 * Bc, 0.9 * H], rot, lobes
    )
    rot, lobes = rotation(rng.uniform(-0.2, 0.2)), random_lobes(rng, 4, 0.08)
    left = g.ellipsoid(
        [-0.1 * Ac, 0.38 * Bc, zr - 0.4 * H], [0.5 * Ac, 0.42 * Bc, 0.4 * H], rot, lobes
    )
    liver_shape = ((main < 1) | (left < 1)) & below
    loops = s.coarse > 0.1  # bowel loops in mesenteric fat, with a little gas
    s.paint(below & ~s.occupied, np.where(loops, 35, -95), tex=8)
    s.paint(below & ~s.occupied & loops & (s.med2 > 2.3), -950, tex=20)
    y0, r = s.spine
    r_ivc = 0.085 * Ac  # inferior vena cava: right-anterior of the spine
    s.paint(g.circle(0.9 * (r + r_ivc), y0 + r, r_ivc), 110, tex=6, solid=True)
    rot, lobes = rotation(0.5 + rng.uniform(-0.3, 0.3)), random_lobes(rng, 4, 0.08)
    spleen = g.ellipsoid(
        [-0.6 * Ac, -0.35 * Bc, zr - 0.5 * H], [0.22 * Ac, 0.38 * Bc, 0.4 * H], rot, lobes
    )
    spleen_vox = (spleen < 1) & below & ~liver_shape & ~s.occupied
    s.paint(spleen_vox, 48, tex=5, label=STRUCTURES["spleen"], solid=True)
    sc = np.array([-0.3 * Ac, 0.3 * Bc, zr - 0.35 * H])
    srad = np.array([0.28 * Ac, 0.3 * Bc, 0.4 * H])
    stomach = g.ellipsoid(sc, srad, rotation(rng.uniform(-0.3, 0.3)), random_lobes(rng, 4, 0.1))
    free = below & ~liver_shape & ~s.occupied
    s.paint((stomach < 1) & free, 40, tex=5, solid=True)  # wall
    s.paint((stomach < 0.8) & free, 15, tex=4)  # fluid, with gas floating anteriorly (supine)
    s.paint((stomach < 0.8) & free & (g.py > sc[1] + 0.25 * srad[1]), -1000, tex=5)
    for side, dz in ((1, 1.15), (-1, 1.0)):  # the right kidney sits lower, under the liver
        rot = rotation(side * 0.5 + rng.uniform(-0.2, 0.2))
        kid = g.ellipsoid(
            [side * 0.42 * Ac, -0.5 * Bc, zr - dz * H], [0.16 * Ac, 0.26 * Bc, 0.36 * H], rot
        )
        free = below & ~s.occupied
        s.paint((kid < 1.3) & free, -90, tex=6, solid=True)  # perirenal fat
        s.paint((kid < 1) & free, 140, tex=6)  # enhancing cortex
        s.paint((kid < 0.6) & free, 70, tex=6)  # medulla and sinus
    gb = g.ellipsoid([0.2 * Ac, 0.35 * Bc, zr - 1.1 * H], [0.12 * Ac, 0.16 * Bc, 0.22 * H])
    s.paint((gb < 1) & below & ~s.occupied, 10, tex=4, solid=True)  # gallbladder
    liver = liver_shape & ~s.occupied
    s.paint(liver, rng.uniform(55, 65) + 4 * s.coarse, tex=5, label=STRUCTURES["liver"], solid=True)
    vessels = liver & (np.abs(s.med) < 0.12) & (np.abs(s.med2) < 0.12)
    s.paint(vessels, 110, tex=8, label=STRUCTURES["liver"])  # portal and hepatic veins
    cand = liver & ~vessels & (main < 0.75)
    _lesions(s, liver, cand, (0.1, 0.25), (20, 35), 0.15, STRUCTURES["liver_tumour"])
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
        A catalogue task with a phantom recipe: ``"lung"`` (lungs + nodules), ``"liver"``
        (liver + tumours), ``"heart"`` (heart + left atrium, contrast-enhanced), or any task
        added as YAML whose recipe names a scene and the structures it labels.
    seed
        Non-negative integer; the same seed gives byte-identical volumes.
    shape, spacing
        Grid size (voxels, at least 16 each) and voxel size (mm) along x, y, z.

    Returns
    -------
    (image, label)
        ``image``: int16 HU; ``label``: uint8 with the task's label values. Both share
        one axial affine ``diag(-sx, -sy, sz)`` (LPS storage) centred on the world origin.
    """
    recipe, seed = phantom_recipe(task), _check_seed(seed)
    shape, spacing = _check_grid(shape, spacing)
    scene = recipe.scene
    # The scene is mixed into the stream so "lung seed 0" and "heart seed 0" share no draws.
    rng = np.random.default_rng([seed, SCENES.index(scene)])
    s = Scene(rng, phantom_affine(shape, spacing), shape, spacing)
    g, H = s.g, s.H
    draw_body(s)
    s.paint(s.cavity, 35, tex=6)  # mediastinal and abdominal soft tissue, refined below
    contrast = {"lung": 40.0, "liver": 160.0, "heart": rng.uniform(280, 320)}[scene]
    draw_spine(s, aorta_hu=contrast)
    # Diaphragm: two domes, the right (liver) one higher; deepest at the back.
    s.ztop = (
        rng.uniform(*{"lung": (-0.75, -0.55), "liver": (0.6, 0.85), "heart": (-0.65, -0.5)}[scene])
        * H
    )
    dy = ((g.py - 0.2 * s.Bc) / s.Bc) ** 2
    right = s.ztop - 0.6 * s.Ac * (((g.px - 0.45 * s.Ac) / s.Ac) ** 2 + dy)
    left = s.ztop - 0.12 * s.Ac - 0.6 * s.Ac * (((g.px + 0.45 * s.Ac) / s.Ac) ** 2 + dy)
    s.zd = np.maximum(right, left)
    s.above = np.broadcast_to(g.pz > s.zd, shape)
    draw_ribs(s, zmin=-0.3 * H if scene == "liver" else -np.inf)
    if scene == "liver":
        _abdomen(s)
    heart_z = s.ztop + 0.3 * H  # resting on the diaphragm, which is lower in the middle
    draw_airway(s, z_carina=heart_z + 0.55 * H)  # carina just above the heart
    _heart(s, heart_z, contrast=scene == "heart")
    band = (np.abs(g.px) < 0.13 * s.Ac) & (g.py > s.spine[0] - 0.5 * s.spine[1])
    s.paint(band & s.cavity & s.above & ~s.occupied, -80, tex=10, solid=True)  # mediastinal fat
    s.paint(s.cavity & ~s.above & ~s.occupied, 55, tex=5, solid=True)  # liver/spleen under dome
    _lungs(s, zc=s.ztop + 1.1 * H, rz=1.5 * H, vessel_hu=0.8 * contrast, nodules=scene == "lung")

    # Scanner: slight blur (thicker slices blur more along z), then quantum noise.
    img = blur3(s.img, (0.08, 0.08, 0.12))
    img += rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(10, 15))
    image = np.clip(np.rint(img), *_HU_RANGE).astype(np.int16)
    lut = np.zeros(256, dtype=np.uint8)  # drawn structure id -> the task's label value
    for value, structure in recipe.labels:
        lut[STRUCTURES[structure]] = value
    label = lut[s.lab]
    names = catalogue.get(task).label_map(background=True)
    for value, name in names.items():
        if value and not np.any(label == value):
            raise MedaiError(f"grid {shape} is too small for a {task} phantom: no {name} voxels")
    desc = f"MedAI Lab synthetic {task} phantom, seed {seed}"
    meta = {"modality": "CT", "source": "phantom", "description": desc, "task": task, "seed": seed}
    label_meta = {**meta, "modality": "SEG", "labels": {str(k): v for k, v in names.items()}}
    return Volume(image, s.affine.copy(), meta), Volume(label, s.affine.copy(), label_meta)


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

    Layout: ``imagesTr/<id>.nii.gz`` (or a DICOM CT series folder ``imagesTr/<id>/`` when
    ``fmt="dicom"``), ``labelsTr/<id>.nii.gz`` and ``dataset.json``; ``<id>`` is
    ``f"{task}_{i:03d}"`` and case ``i`` uses seed ``seed + i``. Everything is written to a
    hidden sibling folder and renamed into place, so ``out_dir`` is complete or absent.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from medai_lab.io.dicom_write import write_dicom_series
    from medai_lab.io.nifti import save_nifti
    from medai_lab.progress import progress_bar

    phantom_recipe(task)
    seed = _check_seed(seed)
    shape, spacing = _check_grid(shape, spacing)
    if fmt not in _FORMATS:
        raise MedaiError(f"unknown phantom format {fmt!r}; choose one of: {', '.join(_FORMATS)}")
    if isinstance(cases, bool) or not isinstance(cases, int | np.integer) or cases < 1:
        raise MedaiError(f"number of cases must be a whole number >= 1, got {cases!r}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedaiError(f"output folder is not empty: {out}")
    with atomic_dir(out) as tmp:
        training = []
        for i in progress_bar(
            range(int(cases)), desc=f"{task} phantoms", unit="case", enabled=progress
        ):
            cid = f"{task}_{i:03d}"
            image, label = make_phantom(task, seed + i, shape, spacing)
            if fmt == "dicom":
                write_dicom_series(
                    image,
                    tmp / "imagesTr" / cid,
                    modality="CT",
                    series_description=f"MedAI Lab {task} phantom",
                    patient_id=f"PHANTOM-{cid}",
                    patient_name=f"Phantom^{cid}",  # synthetic: no real names
                    uid_seed=f"medai-lab-phantom/{task}/{seed + i}",
                )
                image_ref = f"./imagesTr/{cid}"
            else:
                save_nifti(image, tmp / "imagesTr" / f"{cid}.nii.gz")
                image_ref = f"./imagesTr/{cid}.nii.gz"
            save_nifti(label, tmp / "labelsTr" / f"{cid}.nii.gz")
            training.append({"image": image_ref, "label": f"./labelsTr/{cid}.nii.gz"})
        info = _dataset_json(task, training, fmt=fmt, seed=seed, shape=shape, spacing=spacing)
        (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def _dataset_json(task: str, training: list[dict[str, str]], **params: object) -> dict:
    """MSD ``dataset.json``; ``phantom`` records how to regenerate the cases."""
    return {
        "name": f"MedAI-Lab-Phantom-{task.capitalize()}",
        "description": f"Synthetic CT-like {task} segmentation phantom (no patient data), "
        "generated by medai_lab.datasets.phantom",
        "reference": "MedAI Lab phantom",
        "licence": "CC0-1.0",
        "release": "1.0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {str(k): v for k, v in catalogue.get(task).label_map(True).items()},
        "numTraining": len(training),
        "numTest": 0,
        "training": training,
        "test": [],
        "phantom": {"task": task, **params},
    }


def _check_seed(seed: int) -> int:
    try:
        value = operator.index(seed)
    except TypeError:
        value = -1
    if isinstance(seed, bool) or value < 0:
        raise MedaiError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(value)


def _check_grid(
    shape: tuple[int, ...], spacing: tuple[float, ...]
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    try:
        shp = tuple(operator.index(n) for n in shape)
        spc = tuple(float(v) for v in spacing)
    except TypeError:
        raise MedaiError(f"bad phantom grid: shape {shape!r}, spacing {spacing!r}") from None
    if len(shp) != 3 or min(shp) < 16:
        raise MedaiError(f"phantom shape must be 3 sizes of at least 16 voxels, got {shape!r}")
    if len(spc) != 3 or not all(np.isfinite(v) and v > 0 for v in spc):
        raise MedaiError(f"phantom spacing must be 3 positive sizes in mm, got {spacing!r}")
    return shp, spc  # type: ignore[return-value]

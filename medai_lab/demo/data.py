"""The demo's data part: phantom study -> DICOM -> de-identified -> volume -> NIfTI.

Each step is checked against the phantom's own array (and dcm2niix when installed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medai_lab.demo.steps import Steps

_MARKER = ".medai-demo"


def _fresh(out: Path) -> None:
    """Reuse ``out`` only if an earlier demo made it; never delete a user's folder."""
    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            from medai_lab.errors import MedaiError

            raise MedaiError(f"{out} exists and was not made by the demo; pass --out NEW_DIR")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("made by medai-lab demo; safe to delete\n")


def _dcm2niix_agrees(dicom_dir: Path, ours: Path) -> str:
    exe = shutil.which("dcm2niix")
    if exe is None:
        return "dcm2niix not installed (skipped)"
    import nibabel as nib

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [exe, "-z", "n", "-b", "n", "-f", "ref", "-o", tmp, str(dicom_dir)],
            check=True,
            capture_output=True,
        )
        ref = nib.as_closest_canonical(nib.load(Path(tmp) / "ref.nii"))
        mine = nib.as_closest_canonical(nib.load(ours))
        same_values = np.array_equal(ref.get_fdata(), mine.get_fdata())
        affine_err = float(np.abs(ref.affine - mine.affine).max())
    ok = same_values and affine_err < 1e-3
    verdict = "agrees" if ok else "DIFFERS"
    return f"{verdict} (voxels equal: {same_values}, affine max diff {affine_err:.1e} mm)"


def _overview_png(image, label, path: Path) -> None:
    """Axial, coronal and sagittal mid-planes in RAS display with the labels outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img, lab = image.to_ras(), label.to_ras()
    sx, sy, sz = img.spacing
    centre = [int(np.median(ix)) for ix in np.nonzero(lab.array)] or [n // 2 for n in img.shape]
    planes = [
        ("axial", img.array[:, :, centre[2]].T, lab.array[:, :, centre[2]].T, sy / sx),
        ("coronal", img.array[:, centre[1], :].T, lab.array[:, centre[1], :].T, sz / sx),
        ("sagittal", img.array[centre[0], :, :].T, lab.array[centre[0], :, :].T, sz / sy),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), facecolor="black")
    for ax, (name, pix, seg, aspect) in zip(axes, planes, strict=True):
        # Radiological display: patient right on screen left, anterior on the left in
        # sagittal, anterior/superior up; RAS arrays need both axes reversed for that.
        pix, seg = pix[::-1, ::-1], seg[::-1, ::-1]
        ax.imshow(pix, cmap="gray", vmin=-160, vmax=240, aspect=aspect, interpolation="nearest")
        for value, colour in ((1, "#ffb000"), (2, "#ff3030")):
            if np.any(seg == value):
                ax.contour(seg == value, levels=[0.5], colors=[colour], linewidths=0.8)
        ax.set_title(name, color="white")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80, facecolor="black")
    plt.close(fig)


def data_part(
    out: Path, task: str, seed: int, steps: Steps, after_deid: Callable[[], object] | None = None
) -> tuple[int, float]:
    """Run the data part into ``out``; (0 when every check passed, seconds per phantom case).

    ``after_deid`` is called once the de-identification's worker processes are done.
    """
    from medai_lab import catalogue
    from medai_lab.datasets.phantom import make_phantom
    from medai_lab.deid import deidentify_tree
    from medai_lab.io import (
        convert_dicom_to_nifti,
        discover_series,
        load_nifti,
        load_series,
        save_nifti,
        write_dicom_series,
    )

    _fresh(out)
    t0 = time.perf_counter()
    checks: dict[str, bool] = {}
    image, label = make_phantom(task, seed)
    save_nifti(label, out / "nifti" / f"{task}_{seed:03d}_label.nii.gz")
    # What training's phantom writer spends per case (make one, write image and label),
    # timed on a second case: the first call pays for lazy imports.
    t1 = time.perf_counter()
    _, other = make_phantom(task, seed + 1)
    t2 = time.perf_counter()
    save_nifti(other, out / "nifti" / "timing.nii.gz")
    phantom_s = (t2 - t1) + 2 * (time.perf_counter() - t2)
    (out / "nifti" / "timing.nii.gz").unlink()
    case = f"{task}_{seed:03d}"
    raw_dir = out / "dicom" / case
    files = write_dicom_series(
        image, raw_dir, uid_seed=f"demo-{task}-{seed}", patient_id=f"PHANTOM-{case}"
    )
    steps.line(f"phantom '{task}' study written as DICOM: {len(files)} slices in {raw_dir}")
    # The defaults, as a user gets them: PS3.15 headers, then burned-in text (OCR) where the
    # installed version checks pixels. The key lives beside, never inside, the shared tree.
    audit = deidentify_tree(out / "dicom", out / "deid", key_file=out / "deid.key", progress=False)
    steps.line("de-identified: " + audit.describe().replace("\n", "\n      "))
    if after_deid is not None:
        after_deid()
    deid_files = [p for p in (out / "deid").rglob("*.dcm") if "quarantine" not in p.parts]
    leaked = [p for p in deid_files if f"PHANTOM-{case}".encode() in p.read_bytes()]
    checks["de-identified: every file, no patient ID left"] = (
        audit.written == len(files) and not leaked
    )
    raw = load_series(raw_dir)
    checks["DICOM round trip: voxels"] = np.array_equal(raw.array, image.array)
    checks["DICOM round trip: affine"] = bool(np.allclose(raw.affine, image.affine, atol=1e-4))
    report = discover_series(out / "deid")
    dicom_dir = deid_files[0].parent  # OUT/<study>/<series>/
    vol = load_series(dicom_dir)
    # Pixel de-identification may blank text-like regions: exactly the slices it says it
    # redacted may differ from the original, nothing else (and the geometry never).
    redacted = _redacted(audit)
    changed = int(np.count_nonzero(np.any(vol.array != raw.array, axis=(0, 1))))
    checks["de-identified pixels: only redacted slices changed"] = (
        changed <= redacted if redacted is not None else changed == 0
    ) and bool(np.allclose(vol.affine, raw.affine, atol=1e-4))
    nifti = out / "nifti" / f"{case}.nii.gz"
    convert_dicom_to_nifti(dicom_dir, nifti)
    back = load_nifti(nifti)
    checks["NIfTI round trip"] = np.array_equal(back.array, vol.array) and bool(
        np.allclose(back.affine, vol.affine, atol=1e-4)
    )
    agree = _dcm2niix_agrees(dicom_dir, nifti)
    if "dcm2niix not installed" not in agree:
        checks["dcm2niix agrees"] = agree.startswith("agrees")
    steps.line(f"volume {vol} -> {nifti}")
    steps.sub(report.describe().splitlines()[0])
    steps.sub(f"dcm2niix reference: {agree}")
    if changed:
        steps.sub(f"{changed} slice(s) differ from the original after pixel redaction")
    hu = {
        name: float(np.median(image.array[label.array == value]))
        for value, name in catalogue.get(task).label_map().items()
        if np.any(label.array == value)
    }
    summary = {
        "task": task,
        "shape": list(vol.shape),
        "spacing_mm": [round(s, 3) for s in vol.spacing],
        "orientation": vol.orientation,
        "median_HU": {k: round(v, 1) for k, v in hu.items()},
        "checks": checks,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _overview_png(image, label, out / "overview.png")
    steps.sub(f"overview image: {out / 'overview.png'}")
    for key, value in summary.items():
        if key not in ("checks", "task"):
            steps.sub(f"{key:12s} {value}")
    for name, ok in checks.items():
        steps.sub(f"{'PASS' if ok else 'FAIL'}  {name}")
    return (0 if all(checks.values()) else 1), phantom_s


def _redacted(audit: object) -> int | None:
    """Files whose pixels the de-identification redacted (None: no pixel step in this version)."""
    import csv

    path = Path(getattr(audit, "out_dir", "")) / "deid_audit.csv"
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return None
    if not rows or "pixels" not in rows[0]:
        return None
    return sum(row["pixels"] == "redacted" for row in rows)

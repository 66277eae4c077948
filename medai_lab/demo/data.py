"""``medai-lab demo``: the main job end to end on embedded defaults, headless.

1. Data: phantom study -> DICOM series -> de-identification (PS3.15) -> discovery -> volume ->
   NIfTI, each step checked against the phantom's own array (and dcm2niix when installed).
2. Models: lung, liver and heart trained on phantoms (``cpu`` preset: minutes each), tracked in
   MLflow (the embedded store unless ``MLFLOW_TRACKING_URI`` is set), exported to TorchScript,
   the validation images predicted from the export and scored; a summary table, an HTML report
   with overlays and the command that opens the MLflow UI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

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


DICE_TARGET = 0.9  # what the cpu preset must reach on every task's phantoms


def run_demo(
    out: Path,
    *,
    task: str = "liver",
    seed: int = 0,
    train_tasks: tuple[str, ...] = ("lung", "liver", "heart"),
    preset: str = "cpu",
    progress: bool = True,
) -> int:
    """Run the demo into ``out``; returns 0 when every check passed.

    ``task``/``seed`` pick the phantom of the data part; ``train_tasks`` (may be empty) are
    trained with ``preset``. Dice >= 0.9 is checked with the ``cpu`` preset, which is built
    for it; other presets only report their numbers.
    """
    code = _data_part(out, task, seed)
    if not train_tasks:
        return code
    return _model_part(out, train_tasks, preset, progress) or code


def _model_part(out: Path, tasks: tuple[str, ...], preset: str, progress: bool) -> int:
    from medai_lab.tasks.report import format_table, summary_rows, write_html_report
    from medai_lab.tasks.suite import train_and_evaluate
    from medai_lab.tracking import resolve_tracking_uri, ui_command

    print(f"\nmodels: {', '.join(tasks)} with the '{preset}' preset")
    outcomes = []
    for i, name in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)}] training {name} ...", flush=True)
        outcomes.append(train_and_evaluate(name, out, preset, progress=progress))
    rows = summary_rows(outcomes, DICE_TARGET)
    ui = ui_command(resolve_tracking_uri())
    report = write_html_report(outcomes, out / "report.html", DICE_TARGET, ui)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary["models"] = {"preset": preset, "tasks": rows}
    checks = summary.setdefault("checks", {})
    if preset == "cpu":
        for row in rows:
            checks[f"{row['task']}: Dice >= {DICE_TARGET}"] = bool(row["passed"])
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    print("\n" + format_table(rows))
    print(f"\nreport: {report}")
    print(f"MLflow runs: {ui}")
    failed = [name for name, ok in checks.items() if not ok]
    for name in failed:
        print(f"  FAIL  {name}")
    return 1 if failed else 0


def _data_part(out: Path, task: str, seed: int) -> int:
    from medai_lab.datasets.phantom import LABELS, make_phantom
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
    print(f"[1/6] phantom '{task}' seed {seed}: {image}")
    case = f"{task}_{seed:03d}"
    raw_dir = out / "dicom" / case
    files = write_dicom_series(
        image, raw_dir, uid_seed=f"demo-{task}-{seed}", patient_id=f"PHANTOM-{case}"
    )
    print(f"[2/6] wrote {len(files)} DICOM slices to {raw_dir}")
    # The key lives beside, never inside, the de-identified tree that would be shared.
    audit = deidentify_tree(out / "dicom", out / "deid", key_file=out / "deid.key", progress=False)
    print(f"[3/6] {audit.describe()}")
    deid_files = [p for p in (out / "deid").rglob("*.dcm") if "quarantine" not in p.parts]
    leaked = [p for p in deid_files if f"PHANTOM-{case}".encode() in p.read_bytes()]
    checks["de-identified: every file, no patient ID left"] = (
        audit.written == len(files) and not leaked
    )
    report = discover_series(out / "deid")
    dicom_dir = deid_files[0].parent  # OUT/<study>/<series>/
    print(f"[4/6] discovered {report.describe()}")
    vol = load_series(dicom_dir)
    checks["DICOM round trip: voxels"] = np.array_equal(vol.array, image.array)
    checks["DICOM round trip: affine"] = bool(np.allclose(vol.affine, image.affine, atol=1e-4))
    nifti = out / "nifti" / f"{case}.nii.gz"
    convert_dicom_to_nifti(dicom_dir, nifti)
    save_nifti(label, out / "nifti" / f"{case}_label.nii.gz")
    back = load_nifti(nifti)
    checks["NIfTI round trip"] = np.array_equal(back.array, image.array) and bool(
        np.allclose(back.affine, image.affine, atol=1e-4)
    )
    print(f"[5/6] converted to {nifti}")
    agree = _dcm2niix_agrees(dicom_dir, nifti)
    if "dcm2niix not installed" not in agree:
        checks["dcm2niix agrees"] = agree.startswith("agrees")
    print(f"[6/6] dcm2niix reference: {agree}")
    hu = {
        name: float(np.median(image.array[label.array == value]))
        for value, name in LABELS[task].items()
        if value and np.any(label.array == value)
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
    print(f"\noverview image: {out / 'overview.png'}")
    print("\nsummary")
    for key, value in summary.items():
        if key != "checks":
            print(f"  {key:12s} {value}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1

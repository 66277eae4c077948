"""4-D and compressed loads vs dcm2niix converting the same folder (issue 21).

Three series: a 4-D cine-like series (``--slices`` x ``--phases``, 256x256, uncompressed,
phases told apart by TriggerTime), the shared real JPEG 2000 CT series (Basel, 20 slices) and
a ``--j2k-slices`` JPEG 2000 lossless CT series encoded here. For each: our ``load_series``
and our ``convert`` (.nii) against ``dcm2niix -z n`` (uncompressed NIfTI, no sidecar), medians
of ``--repeat`` runs with files in the page cache. Ratios are peer time / our time (above 1:
we are faster). Prints ``RATIO load_4d_vs_dcm2niix <x>`` last.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _quiet import median_time

from medai_lab.io import convert_dicom_to_nifti, load_series, write_dicom_series
from medai_lab.io.volume import Volume

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_4d(folder: Path, slices: int, phases: int) -> Path:
    import pydicom

    series = folder / f"cine{slices}x{phases}"
    if series.exists() and len(list(series.rglob("*.dcm"))) == slices * phases:
        return series
    shutil.rmtree(series, ignore_errors=True)
    rng = np.random.default_rng(0)
    base = rng.normal(300, 120, size=(256, 256, slices)).clip(0, 4000).astype(np.int16)
    affine = np.diag([-1.4, -1.4, 8.0, 1.0])
    files = write_dicom_series(
        Volume(base, affine), folder / "b4d_base", modality="MR", uid_seed="b4d"
    )
    for p in range(phases):
        for n, f in enumerate(files):
            ds = pydicom.dcmread(f)
            ds.TriggerTime = f"{p * 33.3:.1f}"
            ds.InstanceNumber = p * slices + n + 1
            ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[f"b4d-{p}-{n}"])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            arr = np.roll(ds.pixel_array, p, axis=0)
            ds.PixelData = arr.tobytes()
            (series / f"p{p}").mkdir(parents=True, exist_ok=True)
            ds.save_as(series / f"p{p}" / f"{n:04d}.dcm")
    shutil.rmtree(folder / "b4d_base")
    return series


def make_j2k(folder: Path, slices: int) -> Path:
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    series = folder / f"j2k{slices}"
    if series.exists() and len(list(series.iterdir())) == slices:
        return series
    shutil.rmtree(series, ignore_errors=True)
    rng = np.random.default_rng(1)
    # Smooth anatomy-like content (noise alone compresses unlike real CT).
    yy, xx = np.mgrid[:512, :512]
    body = ((xx - 256) ** 2 / 200**2 + (yy - 256) ** 2 / 150**2) < 1
    vol = np.where(body[..., None], 40, -1000) + rng.normal(0, 15, (512, 512, slices))
    files = write_dicom_series(
        Volume(vol.astype(np.int16), np.diag([-0.78, -0.78, 1.25, 1.0])),
        series,
        uid_seed="bj2k",
    )
    for f in files:
        ds = pydicom.dcmread(f)
        ds.compress(JPEG2000Lossless)
        ds.save_as(f)
    return series


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=40)
    ap.add_argument("--phases", type=int, default=30)
    ap.add_argument("--j2k-slices", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()
    exe = shutil.which("dcm2niix")
    if exe is None:
        print("dcm2niix not installed", file=sys.stderr)
        return 1
    work = Path(args.workdir)
    work.mkdir(exist_ok=True)
    cases = [
        (f"4-D {args.slices}x{args.phases} 256^2", make_4d(work, args.slices, args.phases)),
        ("JPEG 2000 Basel 20x512^2", SHARED / "ct_series_basel" / "dicom"),
        (f"JPEG 2000 {args.j2k_slices}x512^2", make_j2k(work, args.j2k_slices)),
    ]
    tmp = Path(tempfile.mkdtemp(dir=work))
    rows = []
    for name, series in cases:
        for f in series.rglob("*"):
            if f.is_file():
                f.read_bytes()  # page cache warm for everyone

        def ours(series: Path = series) -> None:
            load_series(series)

        def convert(series: Path = series) -> None:
            convert_dicom_to_nifti(series, tmp / "o.nii", overwrite=True, labels=False)

        def peer(series: Path = series) -> None:
            out = tmp / "d"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            cmd = [exe, "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(series)]
            subprocess.run(cmd, check=True, capture_output=True)

        ours()  # imports and decoders loaded: time the steady state
        t_load = median_time(ours, args.repeat)
        t_conv = median_time(convert, args.repeat)
        t_peer = median_time(peer, args.repeat)
        rows.append((name, t_load, t_conv, t_peer))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'series':28s} {'load s':>8s} {'convert s':>9s} {'dcm2niix s':>10s} {'load x':>7s}")
    for name, t_load, t_conv, t_peer in rows:
        print(f"{name:28s} {t_load:8.3f} {t_conv:9.3f} {t_peer:10.3f} {t_peer / t_load:7.2f}")
    print(f"RATIO load_j2k_basel_vs_dcm2niix {rows[1][3] / rows[1][1]:.2f}")
    print(f"RATIO load_j2k_{args.j2k_slices}_vs_dcm2niix {rows[2][3] / rows[2][1]:.2f}")
    print(f"RATIO convert_4d_vs_dcm2niix {rows[0][3] / rows[0][2]:.2f}")
    print(f"RATIO load_4d_vs_dcm2niix {rows[0][3] / rows[0][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load and convert a 300-slice 512x512 CT series: ours vs SimpleITK and vs dcm2niix.

Prints a table, ``RATIO convert_vs_dcm2niix <x>`` and, last, ``RATIO load_vs_simpleitk <x>``
(x = peer time / our time: above 1 means we are faster). Median of ``--repeat`` runs with the
files in the page cache for every contender; the two loaders take turns.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _quiet import interleaved_medians, median_time

from medai_lab.io import convert_dicom_to_nifti, load_series, write_dicom_series
from medai_lab.io.volume import Volume


def make_series(folder: Path, slices: int) -> Path:
    series = folder / f"ct{slices}"
    if (series / "IM00001.dcm").exists() and len(list(series.iterdir())) == slices:
        return series
    shutil.rmtree(series, ignore_errors=True)
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 300, size=(512, 512, slices)).clip(-1024, 3000).astype(np.int16)
    affine = np.diag([-0.78, -0.78, 1.25, 1.0])
    write_dicom_series(Volume(arr, affine), series, uid_seed="bench")
    return series


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()

    import SimpleITK as sitk

    work = Path(args.workdir)
    work.mkdir(exist_ok=True)
    series = make_series(work, args.slices)
    for f in series.iterdir():  # page cache warm for everyone
        f.read_bytes()

    def ours() -> None:
        vol = load_series(series)
        assert vol.shape == (512, 512, args.slices)

    def simpleitk() -> None:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
        img = reader.Execute()
        assert sitk.GetArrayViewFromImage(img).shape == (args.slices, 512, 512)

    ours()  # first call pays imports (pydicom, decoders); time the steady state
    simpleitk()
    t_ours, t_sitk = interleaved_medians([ours, simpleitk], args.repeat)

    tmp = Path(tempfile.mkdtemp(dir=work))

    def convert_ours() -> None:
        convert_dicom_to_nifti(series, tmp / "ours.nii.gz", overwrite=True)

    exe = shutil.which("dcm2niix")

    def convert_dcm2niix() -> None:
        out = tmp / "d"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        subprocess.run(
            [exe, "-z", "y", "-b", "n", "-f", "ref", "-o", str(out), str(series)],
            check=True,
            capture_output=True,
        )

    # gzip takes seconds and varies little: a few runs are enough
    n_conv = min(args.repeat, 5)
    t_conv = median_time(convert_ours, n_conv)
    t_d2n = median_time(convert_dcm2niix, n_conv) if exe else float("nan")
    shutil.rmtree(tmp, ignore_errors=True)

    mb = args.slices * 512 * 512 * 2 / 1e6
    print(
        f"series: {args.slices} slices 512x512 int16 ({mb:.0f} MB), median of {args.repeat} "
        f"loads (interleaved), {n_conv} conversions"
    )
    print(f"{'task':28s} {'ours s':>8s} {'peer s':>8s} {'ratio':>7s}")
    print(f"{'load vs SimpleITK':28s} {t_ours:8.3f} {t_sitk:8.3f} {t_sitk / t_ours:7.2f}")
    print(f"{'convert .nii.gz vs dcm2niix':28s} {t_conv:8.3f} {t_d2n:8.3f} {t_d2n / t_conv:7.2f}")
    if not exe:
        print("dcm2niix not installed: convert ratio is nan", file=sys.stderr)
    print(f"RATIO convert_vs_dcm2niix {t_d2n / t_conv:.2f}")
    print(f"RATIO load_vs_simpleitk {t_sitk / t_ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

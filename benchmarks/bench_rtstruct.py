"""RTSTRUCT -> label map on a 512x512x300 CT: ours vs plastimatch (the reference rasteriser).

The CT (synthetic, written with ``write_dicom_series``) and an RTSTRUCT with 10 ROIs (written by
plastimatch from a 10-label map of irregular organ-like blobs) are made once under
``--workdir`` (about a minute; later runs reuse them). Then, files in the page cache, median of
``--repeat`` runs of ours and ``--peer-repeat`` runs of plastimatch:

* ours: ``load_series`` (the CT, which plastimatch reads too) + ``read_rtstruct``;
* plastimatch: ``plastimatch convert --input RTSS --referenced-ct CT --output-prefix DIR
  --xor-contours`` (one image per ROI, needed for the Dice; ``--output-labelmap`` and
  ``--output-ss-img`` took about as long in a trial run).

Prints per-ROI Dice of our labels against plastimatch's masks (target >= 0.99), and last
``RATIO rtstruct_vs_plastimatch <ours s / plastimatch s>`` (below 1 means we are faster).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _quiet import cpu_mark, median_time, others_share

from medai_lab.io import Volume, load_series, write_dicom_series
from medai_lab.io.rtstruct import read_rtstruct

# the tests' helpers: one plastimatch grid mapping and one Dice for tests and benchmark
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
from rtstruct_helpers import dice, on_grid

SHAPE = (512, 512, 300)
AFFINE = np.array(
    [[-0.78, 0, 0, 200.0], [0, -0.78, 0, 180.0], [0, 0, 1.25, -350.0], [0, 0, 0, 1.0]]
)


def organ_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """A 10-label map of blobs with wavy surfaces (many contour points per slice); later blobs
    cut into earlier ones, so labels touch, nest and leave holes."""
    rng = np.random.default_rng(7)
    labels = np.zeros(shape, np.uint8)
    for n in range(1, 11):
        c = rng.uniform([0.25, 0.25, 0.2], [0.75, 0.75, 0.8]) * np.array(shape)
        r = rng.uniform([25, 25, 30], [110, 90, 120])
        lo = np.maximum(np.floor(c - r * 1.3).astype(int), 0)
        hi = np.minimum(np.ceil(c + r * 1.3).astype(int), shape)
        axes = (np.arange(a, b, dtype=np.float32) for a, b in zip(lo, hi, strict=True))
        i, j, k = np.meshgrid(*axes, indexing="ij", sparse=True)
        ang = np.arctan2(j - c[1], i - c[0])
        wobble = 1 + 0.12 * np.sin(5 * ang + k / 9.0) + 0.05 * np.cos(11 * ang)
        d = ((i - c[0]) / r[0]) ** 2 + ((j - c[1]) / r[1]) ** 2 + ((k - c[2]) / r[2]) ** 2
        box = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        box[d < wobble**2] = n
    return labels


def prepare(work: Path, exe: str) -> tuple[Path, Path]:
    """The CT and plastimatch's RTSTRUCT for it (made once, reused by later runs)."""
    import nibabel as nib

    ct, rtss_dir = work / "ct", work / "rtss-work"
    done = work / "rtss.dcm"
    if done.exists() and (ct / "IM00300.dcm").exists():
        return ct, done
    shutil.rmtree(ct, ignore_errors=True)
    shutil.rmtree(rtss_dir, ignore_errors=True)
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 200, size=SHAPE).clip(-1024, 3000).astype(np.int16)
    write_dicom_series(Volume(arr, AFFINE), ct, uid_seed="bench-rtstruct")
    grid = load_series(ct)
    labels = organ_labels(grid.shape)
    # plastimatch's structure-set image: bit n-1 of a uint32 voxel set = in structure n
    ss = np.where(labels > 0, np.left_shift(1, labels.astype(np.uint32) - 1), 0)
    rtss_dir.mkdir(parents=True)
    nib.save(nib.Nifti1Image(ss.astype(np.uint32), grid.affine), rtss_dir / "ss.nii")
    names = "".join(f"{n - 1}|255 0 0|Organ{n:02d}\n" for n in range(1, 11))
    (rtss_dir / "ss.txt").write_text(names)
    run = [exe, "convert", "--input-ss-img", str(rtss_dir / "ss.nii")]
    run += ["--input-ss-list", str(rtss_dir / "ss.txt"), "--referenced-ct", str(ct)]
    subprocess.run([*run, "--output-dicom", str(rtss_dir / "out")], check=True, capture_output=True)
    (made,) = (rtss_dir / "out").glob("rtss*.dcm")
    made.rename(done)
    shutil.rmtree(rtss_dir)
    return ct, done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-repeat", type=int, default=1, help="plastimatch runs (slow)")
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()
    exe = shutil.which("plastimatch")
    if exe is None:
        print("plastimatch is not installed (Debian package plastimatch)", file=sys.stderr)
        return 2
    import SimpleITK as sitk

    work = Path(args.workdir) / "rtstruct"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ct, rtss = prepare(work, exe)
    print(f"inputs ready in {time.perf_counter() - t0:.1f} s ({rtss.stat().st_size / 1e6:.1f} MB)")
    for f in [*ct.iterdir(), rtss]:  # page cache warm for everyone
        f.read_bytes()
    tmp = Path(tempfile.mkdtemp(dir=work))
    result = {}

    def ours() -> None:
        result["grid"] = grid = load_series(ct)
        result["lm"] = read_rtstruct(rtss, grid)

    def plastimatch() -> None:
        out = tmp / "pm"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [exe, "convert", "--input", str(rtss), "--referenced-ct", str(ct)]
        subprocess.run(
            [*cmd, "--output-prefix", str(out), "--xor-contours"],
            check=True,
            capture_output=True,
        )

    ours()  # first call pays imports; time the steady state
    mark = cpu_mark()
    t_ours = median_time(ours, args.repeat)
    grid = result["grid"]
    t_raster = median_time(lambda: read_rtstruct(rtss, grid), args.repeat)
    t_pm = median_time(plastimatch, args.peer_repeat)
    busy = others_share(mark)

    lm = result["lm"]
    print(
        f"CT {'x'.join(map(str, SHAPE))}, {len(lm.labels)} ROIs; median of {args.repeat} (ours), "
        f"{args.peer_repeat} (plastimatch)"
    )
    print(f"{'ROI':10s} {'ours vox':>10s} {'plastimatch':>12s} {'Dice':>7s}")
    worst = 1.0
    for value, name in lm.labels.items():
        ref = on_grid(sitk.ReadImage(str(tmp / "pm" / f"{name}.mha")), grid) > 0
        d = dice(lm.volume.array == value, ref)
        worst = min(worst, d)
        n_ours = int((lm.volume.array == value).sum())
        print(f"{name:10s} {n_ours:10d} {int(ref.sum()):12d} {d:7.4f}")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"worst Dice {worst:.4f} (target >= 0.99)")
    print(f"other processes used {busy:.0%} of the CPUs while timing")
    print(f"{'task':40s} {'seconds':>8s}")
    print(f"{'ours: load_series + read_rtstruct':40s} {t_ours:8.3f}")
    print(f"{'ours: read_rtstruct only (CT loaded)':40s} {t_raster:8.3f}")
    print(f"{'plastimatch convert --output-prefix':40s} {t_pm:8.3f}")
    print(f"RATIO rtstruct_only_vs_plastimatch {t_raster / t_pm:.3f}")
    print(f"RATIO rtstruct_vs_plastimatch {t_ours / t_pm:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

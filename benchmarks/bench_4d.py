"""4-D and compressed loads vs dcm2niix converting the same folder (issue 21).

Series: a 4-D cine-like series (``--slices`` x ``--phases``, 256x256, uncompressed, phases
told apart by TriggerTime); the shared real JPEG 2000 CT series (Basel, 20 slices); and
``--codec-slices``-slice CT series built from the Basel files (real Siemens headers, positions
stepped on): JPEG 2000 lossless with the Basel code streams as they are, and the decoded
pixels re-encoded as JPEG-LS lossless (dcmtk ``dcmcjpls``) and JPEG lossless SV1
(``dcmcjpeg``). For each: our ``load_series`` against ``dcm2niix -z n -b n`` (the whole
conversion: dcm2niix has no load-only mode), and our ``convert`` (.nii). Runs alternate
ours / dcm2niix, after waiting (bounded) for the machine to quieten, files in the page cache;
medians of ``--repeat``. Besides wall time, CPU seconds (ours: this process + its decode
workers; dcm2niix: its process) show the work done independently of machine load.
Ratios are dcm2niix time / ours (above 1: we are faster). Prints ``RATIO load_4d_vs_dcm2niix
<x>`` last.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _quiet import Quiet

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


def make_codec_series(folder: Path, slices: int) -> dict[str, Path]:
    """``slices``-slice CT series from the real Basel files: J2K as stored, JPEG-LS, JPEG SV1."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out = {c: folder / f"basel{slices}_{c}" for c in ("j2k", "raw", "jls", "jpegll")}
    if all((p / ".complete").exists() for p in out.values()):
        return out
    for p in out.values():
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
    real = sorted((SHARED / "ct_series_basel" / "dicom").iterdir())
    series_uid = generate_uid(entropy_srcs=[f"bench-basel-{slices}"])
    for k in range(slices):
        ds = pydicom.dcmread(real[k % len(real)])
        ds.SeriesInstanceUID, ds.StudyInstanceUID = series_uid, generate_uid(entropy_srcs=["b"])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"bench-basel-{slices}-{k}"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1], -2.0 * k]
        ds.InstanceNumber = k + 1
        name = f"IM{k:05d}.dcm"
        ds.save_as(out["j2k"] / name)  # code stream untouched
        ds.decompress()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(out["raw"] / name, enforce_file_format=True)
        for codec, tool in (("jls", ["dcmcjpls", "+el"]), ("jpegll", ["dcmcjpeg", "+e1"])):
            cmd = [shutil.which(tool[0]) or tool[0], tool[1], str(out["raw"] / name)]
            subprocess.run([*cmd, str(out[codec] / name)], check=True, capture_output=True)
    for p in out.values():
        (p / ".complete").touch()
    return out


def timed(fn: Callable[[], object], children: bool) -> tuple[float, float]:
    """(wall s, CPU s) of ``fn``: this process, plus reaped children when ``children``."""
    usage = resource.getrusage

    def cpu() -> float:
        own = usage(resource.RUSAGE_SELF)
        kids = usage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + (kids.ru_utime + kids.ru_stime) * children

    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=40)
    ap.add_argument("--phases", type=int, default=30)
    ap.add_argument("--codec-slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=".bench")
    ap.add_argument("--busy-limit", type=float, default=0.1, help="others' CPU share to wait for")
    ap.add_argument("--max-wait", type=float, default=60.0, help="total seconds to wait for it")
    ap.add_argument("--only", nargs="*", help="series keys to run (4d, j2k_basel, j2k_300, ...)")
    args = ap.parse_args()
    import SimpleITK as sitk

    exe = shutil.which("dcm2niix")
    if exe is None:
        print("dcm2niix not installed", file=sys.stderr)
        return 1
    work = Path(args.workdir).resolve()
    work.mkdir(exist_ok=True)
    codec = make_codec_series(work, args.codec_slices)
    n = args.codec_slices
    # (name, key, folder, dcm2niix can decode it); Debian's dcm2niix has no JPEG-LS decoder.
    cases = [
        (
            f"4-D {args.slices}x{args.phases} 256^2",
            "4d",
            make_4d(work, args.slices, args.phases),
            1,
        ),
        ("JPEG 2000 Basel 20x512^2", "j2k_basel", SHARED / "ct_series_basel" / "dicom", 1),
        (f"JPEG 2000 {n}x512^2", f"j2k_{n}", codec["j2k"], 1),
        (f"JPEG-LS {n}x512^2", f"jls_{n}", codec["jls"], 0),
        (f"JPEG lossless {n}x512^2", f"jpegll_{n}", codec["jpegll"], 1),
    ]
    if args.only:
        cases = [c for c in cases if c[1] in args.only]
    tmp = Path(tempfile.mkdtemp(dir=work))
    quiet = Quiet(args.busy_limit, args.max_wait)
    rows = []
    for name, key, series, d2n_ok in cases:
        files = [f for f in series.rglob("*") if f.is_file()]
        for f in files:
            f.read_bytes()  # page cache warm for everyone

        def ours(series: Path = series) -> None:
            load_series(series)

        def convert(series: Path = series) -> None:
            convert_dicom_to_nifti(series, tmp / "o.nii", overwrite=True, labels=False)

        def dcm2niix(series: Path = series) -> None:
            out = tmp / "d"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            cmd = [exe, "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(series)]
            subprocess.run(cmd, check=True, capture_output=True)
            if not any(out.glob("*.nii")):
                raise SystemExit(f"dcm2niix wrote nothing for {series}")

        def simpleitk(series: Path = series) -> None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
            reader.Execute()

        contenders: dict[str, Callable[[], None]] = {"load": ours}
        if d2n_ok:
            contenders["dcm2niix"] = dcm2niix
        if key != "4d":  # SimpleITK reads one 3-D series; GDCM decodes every codec here
            contenders["simpleitk"] = simpleitk
        else:
            contenders["convert"] = convert
        ours()  # imports and decoders loaded: time the steady state
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
        for _ in range(args.repeat):  # interleaved: load drifts hit both sides alike
            quiet.wait()
            for k, fn in contenders.items():
                runs[k].append(timed(fn, children=True))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
               for k, v in runs.items()}  # fmt: skip
        rows.append((name, key, med))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPUs, waited {quiet.waited_s:.0f} s for quiet, "
          f"median of {args.repeat} interleaved runs; wall s / CPU s")  # fmt: skip
    cols = ("load", "convert", "dcm2niix", "simpleitk")
    print(f"{'series':26s} " + " ".join(f"{c:>14s}" for c in cols) + "  x dcm2niix  x sitk")
    for name, _, m in rows:
        cells = [f"{m[c][0]:7.2f}/{m[c][1]:6.2f}" if c in m else f"{'-':>14s}" for c in cols]
        x = [f"{m[p][0] / m['load'][0]:10.2f}" if p in m else f"{'-':>10s}"
             for p in ("dcm2niix", "simpleitk")]  # fmt: skip
        print(f"{name:26s} " + " ".join(cells) + " " + " ".join(x))
    for _, key, m in rows:
        for peer in ("dcm2niix", "simpleitk"):
            if key != "4d" and peer in m:
                print(f"RATIO load_{key}_vs_{peer} {m[peer][0] / m['load'][0]:.2f}")
    for _, key, m in rows:
        if key == "4d":
            print(f"RATIO convert_4d_vs_dcm2niix {m['dcm2niix'][0] / m['convert'][0]:.2f}")
            print(f"RATIO load_4d_vs_dcm2niix {m['dcm2niix'][0] / m['load'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

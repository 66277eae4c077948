"""De-identify 500 CT slices (512x512): ours vs dicognito, same files, same run.

Inputs are the real Siemens headers of ``shared/data/ct_series_basel`` (private groups and
CSA header included) with uncompressed pixel data, 25 patients x 20 slices, names and
unique UIDs filled in. Both tools read every file and write a de-identified copy; the page
cache is warm for both. Prints files/s, ``RATIO deid_parallel_vs_dicognito <x>`` (ours
with one process per core) and, last, ``RATIO deid_vs_dicognito <x>`` (ours in one
process, like dicognito). x = our files/s over dicognito's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from medai_lab.deid import deidentify_tree

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDAI_SHARED_DATA", ROOT.parent / "shared" / "data"))


def make_inputs(folder: Path, patients: int) -> Path:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    src = sorted((SHARED / "ct_series_basel" / "dicom").iterdir())
    target = folder / f"deid{patients * len(src)}"
    if target.is_dir() and len(list(target.iterdir())) == patients * len(src):
        return target
    shutil.rmtree(target, ignore_errors=True)
    tmp = folder / (target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    templates = []
    for path in src:
        ds = pydicom.dcmread(path)
        ds.PixelData = ds.pixel_array.tobytes()
        ds["PixelData"].VR = "OW"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        templates.append(ds)
    n = 0
    for p in range(patients):
        study, series = generate_uid(), generate_uid()
        for ds in templates:
            ds.PatientName = f"Benchmark^Patient{p:03d}"
            ds.PatientID = f"BENCH{p:05d}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.save_as(tmp / f"IM{n:05d}.dcm", enforce_file_format=True)
            n += 1
    tmp.rename(target)
    return target


def run_dicognito(inputs: Path, out: Path) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    out.mkdir(parents=True)
    anonymizer = Anonymizer()
    for path in sorted(inputs.iterdir()):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / path.name)


def timed(fn, repeat: int, out: Path) -> float:
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    shutil.rmtree(out, ignore_errors=True)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=25, help="x 20 slices (default 500 files)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()
    work = Path(args.workdir).resolve()
    inputs = make_inputs(work, args.patients)
    files = len(list(inputs.iterdir()))
    for f in inputs.iterdir():  # page cache warm for everyone
        f.read_bytes()
    key = b"benchmark-key-0123456789abcdef!!"
    out = work / "deid-out"
    cores = os.cpu_count() or 1

    def ours(workers: int):
        return lambda: deidentify_tree(inputs, out, key=key, workers=workers, progress=False)

    t_one = timed(ours(1), args.repeat, out)
    t_par = timed(ours(cores), args.repeat, out)
    t_dg = timed(lambda: run_dicognito(inputs, out), args.repeat, out)
    rows = [
        ("medai-lab deid, 1 process", t_one),
        (f"medai-lab deid, {cores} processes", t_par),
        ("dicognito 0.19 (pydicom read, anonymize, save)", t_dg),
    ]
    print(f"{files} files, 512x512 int16, explicit VR LE, median of {args.repeat}")
    for name, t in rows:
        print(f"  {name:<48} {t:7.2f} s  {files / t:7.1f} files/s")
    print(f"RATIO deid_parallel_vs_dicognito {t_dg / t_par:.2f}")
    print(f"RATIO deid_vs_dicognito {t_dg / t_one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""De-identify 500 CT slices (512x512): ours vs dicognito and vs ``cp -r``; pixel checking.

Inputs are the real Siemens headers of ``shared/data/ct_series_basel`` (private groups and
CSA header included) with uncompressed pixel data, 25 patients x 20 slices, names and
unique UIDs filled in. The page cache is warm for every contender.

1. Headers only (``pixels="off"``), in-process: ours (1 process; one per core) vs dicognito
   (pydicom read, anonymize, save). ``RATIO deid_parallel_vs_dicognito`` and
   ``RATIO deid_vs_dicognito``: our files/s over dicognito's (higher is better).
2. Pixel checking: ``medai-lab deid --pixels redact --workers 2`` (the command, process
   start and OCR model loading included) over the first 300 slices; target <= 15 s.
3. Last: ``medai-lab deid --pixels off`` (the command) over the 500 slices vs ``cp -r`` of
   the same folder: ``RATIO deid_cli_seconds_vs_cp <x>``, our seconds over cp's (lower is
   better; target <= 3).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _quiet import Quiet

from medai_lab.deid import deidentify_tree

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDAI_SHARED_DATA", ROOT.parent / "shared" / "data"))


def make_inputs(folder: Path, patients: int) -> Path:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    src = sorted((SHARED / "ct_series_basel" / "dicom").iterdir())
    target = folder / f"deid{patients * len(src)}"
    bigger = folder / f"deid{25 * len(src)}"
    if patients < 25 and bigger.is_dir():  # the first patients of the 500-slice set
        return subset(bigger, target, patients * len(src))
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


def subset(source: Path, target: Path, n: int) -> Path:
    if target.is_dir() and len(list(target.iterdir())) == n:
        return target
    shutil.rmtree(target, ignore_errors=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for path in sorted(source.iterdir())[:n]:
        shutil.copyfile(path, tmp / path.name)
    tmp.rename(target)
    return target


# the command as installed: with cached bytecode (pip compiles it at install time)
CLI_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cli(inputs: Path, out: Path, key_file: Path, *extra: str):
    cmd = [sys.executable, "-m", "medai_lab.cli", "deid", str(inputs), str(out), "--quiet"]
    cmd += ["--key-file", str(key_file), *extra]
    subprocess.run([*cmd[:4], "--help"], check=True, stdout=subprocess.DEVNULL, env=CLI_ENV)
    return lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=CLI_ENV)


def child_cpu(fn, repeat: int, out: Path) -> float:
    """CPU seconds (user + sys) the child processes of one ``timed`` round used, per run.

    On a busy shared machine wall times stretch; CPU time says what a quiet one would see.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed(fn, repeat, out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used / repeat


def warm(folder: Path) -> None:
    for f in folder.iterdir():  # page cache warm for everyone
        f.read_bytes()


def run_dicognito(inputs: Path, out: Path) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    out.mkdir(parents=True)
    anonymizer = Anonymizer()
    for path in sorted(inputs.iterdir()):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / path.name)


QUIET = Quiet(limit=0.1, budget_s=60)


def timed(fn, repeat: int, out: Path) -> float:
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        QUIET.wait()
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
    ocr_inputs = make_inputs(work, 15)
    warm(inputs)
    key = b"benchmark-key-0123456789abcdef!!"
    key_file = work / "bench.key"
    key_file.write_text(key.hex() + "\n")
    out = work / "deid-out"
    cores = os.cpu_count() or 1

    def ours(workers: int):
        return lambda: deidentify_tree(
            inputs, out, key=key, workers=workers, pixels="off", progress=False
        )

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

    warm(ocr_inputs)
    n_ocr = len(list(ocr_inputs.iterdir()))
    run_px = cli(ocr_inputs, out, key_file, "--workers", "2")
    t_px = timed(run_px, args.repeat, out)
    cpu_px = child_cpu(run_px, 1, out)
    print(f"medai-lab deid --pixels redact --workers 2, {n_ocr} slices: {t_px:.2f} s "
          f"({n_ocr / t_px:.1f} files/s; CPU {cpu_px:.1f} s; target <= 15 s)")  # fmt: skip

    warm(inputs)
    run_off = cli(inputs, out, key_file, "--pixels", "off")
    t_cli = timed(run_off, args.repeat, out)
    cpu_cli = child_cpu(run_off, 1, out)

    def run_cp():
        return subprocess.run(["cp", "-r", str(inputs), str(out)], check=True)

    t_cp = timed(run_cp, args.repeat, out)
    cpu_cp = child_cpu(run_cp, 1, out)
    print(f"medai-lab deid --pixels off, {files} slices: {t_cli:.2f} s (CPU {cpu_cli:.2f} s); "
          f"cp -r: {t_cp:.2f} s (CPU {cpu_cp:.2f} s); target: deid <= 3x cp")  # fmt: skip
    print(f"RATIO deid_cli_seconds_vs_cp {t_cli / t_cp:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

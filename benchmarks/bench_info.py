"""``medai-lab info`` on a folder of 10,000 DICOM files: wall time and peak memory vs peers.

The folder is built once (under ``--workdir``) from the real Siemens CT headers of the shared
Basel series (private groups and CSA header kept, UIDs assigned, pixel data cut to 64x64 so the
folder stays small: ``info`` never reads pixels). It holds ``--series`` 3-D series and two 4-D
ones (cine-like, phases told apart by TriggerTime), ``--files`` files in all.

Contenders, each a fresh process with the files in the page cache, median of ``--repeat``:
``medai-lab info DIR``; ``dcm2niix -b o`` (reads every header, writes only the BIDS sidecars);
a pydicom script (``dcmread(stop_before_pixels=True)`` of every file, grouped by series UID).
Peak memory is the child's maximum resident set (``wait4``). Prints ``RATIO info_vs_dcm2niix
<x>`` last (x = dcm2niix time / ours: above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOT = Path(__file__).resolve().parents[1]

PYDICOM_PEER = """
import sys, os
import pydicom
series = {}
for dirpath, _, names in os.walk(sys.argv[1]):
    for name in names:
        if not name.endswith(".dcm"):
            continue
        ds = pydicom.dcmread(os.path.join(dirpath, name), stop_before_pixels=True)
        series.setdefault(ds.SeriesInstanceUID, []).append(ds.ImagePositionPatient)
print(len(series), "series")
"""


def make_folder(work: Path, n_files: int, n_series: int) -> Path:
    """``n_files`` files: ``n_series`` 3-D series and two 4-D ones of 25 slices x 20 phases."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = work / f"info{n_files}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    template = pydicom.dcmread(sorted((SHARED / "ct_series_basel" / "dicom").iterdir())[0])
    template.decompress()
    template.Rows = template.Columns = 64
    template.PixelSpacing = [7.8, 7.8]
    template.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    rng = np.random.default_rng(0)
    n4d = 2 * 25 * 20
    per = (n_files - n4d) // n_series
    plan = [(s, per, 1) for s in range(n_series)] + [(n_series, 25, 20), (n_series + 1, 25, 20)]
    plan[0] = (0, per + (n_files - n4d - per * n_series), 1)
    tmp = Path(tempfile.mkdtemp(dir=work))
    for s, slices, phases in plan:
        uid = generate_uid(entropy_srcs=[f"bench-info-{s}"])
        out = tmp / f"s{s:03d}"
        out.mkdir()
        template.SeriesInstanceUID, template.SeriesNumber = uid, s + 1
        template.StudyInstanceUID = generate_uid(entropy_srcs=["bench-info-study"])
        for p in range(phases):
            for k in range(slices):
                template.ImagePositionPatient = [-250.0, -250.0, -2.0 * k]
                template.InstanceNumber = p * slices + k + 1
                if phases > 1:
                    template.TriggerTime = f"{p * 40.0:.1f}"
                sop = generate_uid(entropy_srcs=[f"bench-info-{s}-{p}-{k}"])
                template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = sop
                pixels = rng.integers(0, 1500, (64, 64), dtype=np.uint16)
                template.PixelData = pixels.tobytes()
                template.save_as(out / f"IM{p * slices + k:05d}.dcm", enforce_file_format=True)
    os.replace(tmp, folder)
    marker.touch()
    return folder


def run_child(cmd: list[str]) -> tuple[float, float]:
    """(wall s, peak resident MiB) of ``cmd`` run to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.strip()[:300]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--series", type=int, default=18)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(exist_ok=True)
    folder = make_folder(work, args.files, args.series)
    files = [f for f in folder.rglob("*.dcm")]
    for f in files:
        f.read_bytes()  # page cache warm for everyone
    mb = sum(f.stat().st_size for f in files) / 1e6
    exe_ours = ROOT / ".venv" / "bin" / "medai-lab"
    ours_cmd = [str(exe_ours) if exe_ours.exists() else "medai-lab", "info", str(folder)]
    out = subprocess.run(ours_cmd, capture_output=True, text=True, check=True).stdout
    print(out.splitlines()[0])
    contenders: list[tuple[str, list[str]]] = [("medai-lab info", ours_cmd)]
    tmp = Path(tempfile.mkdtemp(dir=work))
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix:
        d2n = [dcm2niix, "-b", "o", "-f", "%s_%t", "-o", str(tmp), str(folder)]
        contenders.append(("dcm2niix -b o", d2n))
    contenders.append(
        ("pydicom dcmread (headers)", [sys.executable, "-c", PYDICOM_PEER, str(folder)])
    )
    results: dict[str, tuple[float, float]] = {}
    for name, cmd in contenders:
        runs = [run_child(cmd) for _ in range(args.repeat)]
        results[name] = (float(np.median([r[0] for r in runs])), max(r[1] for r in runs))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"folder: {len(files)} files, {mb:.0f} MB, median of {args.repeat}, fresh processes")
    print(f"{'contender':28s} {'wall s':>8s} {'files/s':>8s} {'peak MiB':>9s}")
    for name, (wall, peak) in results.items():
        print(f"{name:28s} {wall:8.2f} {len(files) / wall:8.0f} {peak:9.0f}")
    ours = results["medai-lab info"][0]
    pyd = results["pydicom dcmread (headers)"][0]
    print(f"RATIO info_vs_pydicom {pyd / ours:.2f}")
    if not dcm2niix:
        print("dcm2niix not installed", file=sys.stderr)
        return 1
    print(f"RATIO info_vs_dcm2niix {results['dcm2niix -b o'][0] / ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

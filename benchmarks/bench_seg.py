"""DICOM SEG of a 3-label prediction on a 512x512x300 CT: ours (highdicom) vs dcmqi.

Write: NIfTI prediction + DICOM series -> SEG file (ours: ``load_nifti`` + ``write_seg``;
dcmqi: ``itkimage2segimage``). Read: SEG file -> label map (ours: ``read_seg`` onto the loaded
reference, and also with ``save_nifti`` of the result; dcmqi: ``segimage2itkimage`` to NIfTI
files). Both read the same SEG (ours). Median of ``--repeat`` runs, files in the page cache,
each run after the CPU is quiet (up to a budget). Issue targets: write <= 2 s, read <= 1 s.

Prints a table, ``RATIO seg_read_vs_dcmqi <x>`` and, last, ``RATIO seg_write_vs_dcmqi <x>``,
with x = dcmqi time / our time (the project's convention, benchmarks/RESULTS.md: above 1 means
we are faster). Read ratio: dcmqi vs our file-to-file read (``read_seg`` + ``save_nifti``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _quiet import Quiet

from medai_lab.io import load_nifti, load_series, save_nifti, write_dicom_series
from medai_lab.io.seg import read_seg, write_seg
from medai_lab.io.structures import structures
from medai_lab.io.volume import Volume

LABELS = {1: "liver", 2: "spleen", 3: "tumour"}
QUIET = Quiet(limit=0.15, budget_s=20)


def make_series(folder: Path, slices: int) -> Path:
    series = folder / f"segct{slices}"
    if len(list(series.glob("*.dcm"))) == slices:
        return series
    shutil.rmtree(series, ignore_errors=True)
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 300, size=(512, 512, slices)).clip(-1024, 3000).astype(np.int16)
    write_dicom_series(Volume(arr, np.diag([-0.78, -0.78, 1.0, 1.0])), series, uid_seed="seg")
    return series


def prediction(shape: tuple[int, int, int]) -> np.ndarray:
    """Liver, spleen and a tumour inside the liver: ellipsoids over most of the slices."""
    x, y, z = (np.arange(n, dtype=np.float32) / n for n in shape)
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    lab = np.zeros(shape, np.uint8)
    lab[((x - 0.35) / 0.25) ** 2 + ((y - 0.5) / 0.3) ** 2 + ((z - 0.5) / 0.4) ** 2 < 1] = 1
    lab[((x - 0.75) / 0.12) ** 2 + ((y - 0.45) / 0.12) ** 2 + ((z - 0.55) / 0.2) ** 2 < 1] = 2
    lab[((x - 0.35) / 0.05) ** 2 + ((y - 0.5) / 0.05) ** 2 + ((z - 0.4) / 0.08) ** 2 < 1] = 3
    return lab


def dcmqi_meta() -> dict:
    items = []
    for value, name in LABELS.items():
        s = structures()[name]
        items.append({
            "labelID": value,
            "SegmentLabel": name,
            "SegmentAlgorithmType": "AUTOMATIC",
            "SegmentAlgorithmName": "bench",
            "SegmentedPropertyCategoryCodeSequence": {"CodeValue": s.category.value,
                "CodingSchemeDesignator": s.category.scheme, "CodeMeaning": s.category.meaning},
            "SegmentedPropertyTypeCodeSequence": {"CodeValue": s.code.value,
                "CodingSchemeDesignator": s.code.scheme, "CodeMeaning": s.code.meaning},
        })  # fmt: skip
    return {"SeriesDescription": "dcmqi", "SeriesNumber": "300", "InstanceNumber": "1",
            "segmentAttributes": [items]}  # fmt: skip


def tool(name: str) -> str:
    exe = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        sys.exit(f"{name} not found (pip package dcmqi)")
    return exe


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (dcmqi runs as a child)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(contenders: dict[str, object], repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each contender, run round robin (a busy spell hits all)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            QUIET.wait()
            c0, t0 = cpu_s(), time.perf_counter()
            fn()  # type: ignore[operator]
            times[name].append((time.perf_counter() - t0, cpu_s() - c0))
    return {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in times.items()
    }


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{Path(cmd[0]).name} failed: {proc.stdout[-500:]} {proc.stderr[-500:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=".bench")
    args = ap.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(exist_ok=True)
    series = make_series(work, args.slices)
    tmp = Path(tempfile.mkdtemp(dir=work))
    try:
        ref = load_series(series)
        labels = prediction(ref.shape)
        nifti = save_nifti(Volume(labels, ref.affine), tmp / "pred.nii.gz")
        meta = tmp / "meta.json"
        meta.write_text(json.dumps(dcmqi_meta()))
        ours_seg, dcmqi_seg, dcmqi_out = tmp / "ours.dcm", tmp / "dcmqi.dcm", tmp / "dcmqi_out"
        for f in [*series.iterdir(), nifti]:  # page cache warm for everyone
            f.read_bytes()

        def write_ours() -> None:
            write_seg(load_nifti(nifti), series, ours_seg, labels=LABELS)

        def write_dcmqi() -> None:
            run([tool("itkimage2segimage"), "--inputImageList", str(nifti),
                 "--inputDICOMDirectory", str(series), "--outputDICOM", str(dcmqi_seg),
                 "--inputMetadata", str(meta)])  # fmt: skip

        def read_ours() -> None:
            read_seg(ours_seg, ref, labels=LABELS)

        def read_ours_to_file() -> None:
            save_nifti(read_seg(ours_seg, ref, labels=LABELS).volume, tmp / "back.nii.gz")

        def read_dcmqi() -> None:
            shutil.rmtree(dcmqi_out, ignore_errors=True)
            dcmqi_out.mkdir()
            run([tool("segimage2itkimage"), "--inputDICOM", str(ours_seg),
                 "--outputDirectory", str(dcmqi_out), "-t", "nii"])  # fmt: skip

        write_ours()  # first call pays imports (highdicom, pydicom codecs): time the steady state
        if not np.array_equal(read_seg(ours_seg, ref, labels=LABELS).volume.array, labels):
            sys.exit("read_seg did not give back the prediction")
        t = timed(
            {"w": write_ours, "wd": write_dcmqi, "r": read_ours, "rf": read_ours_to_file,
             "rd": read_dcmqi},
            args.repeat,
        )  # fmt: skip
        t_w, t_wd, t_rf, t_rd = (t[k][0] for k in ("w", "wd", "rf", "rd"))
        mb = ours_seg.stat().st_size / 1e6
        n_lab = {v: int((labels == v).sum()) for v in LABELS}
        load = f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        print(f"series: 512x512x{args.slices} CT; prediction {n_lab} voxels; our SEG {mb:.1f} MB;"
              f" median of {args.repeat} round robin; {load}")  # fmt: skip
        print(f"{'task':42s} {'ours s':>7s} {'dcmqi s':>8s} {'ratio':>6s}   CPU s: ours, dcmqi")
        rows = [
            ("write SEG (load_nifti + write_seg)", "w", "wd"),
            ("read SEG (read_seg onto loaded reference)", "r", "rd"),
            ("read SEG to NIfTI (read_seg + save_nifti)", "rf", "rd"),
        ]
        for name, a, b in rows:
            print(f"{name:42s} {t[a][0]:7.3f} {t[b][0]:8.3f} {t[b][0] / t[a][0]:6.2f}"
                  f"   {t[a][1]:6.2f} {t[b][1]:6.2f}")  # fmt: skip

        def verdict(wall: float, cpu: float, limit: float) -> str:
            # CPU s is what a quiet machine's wall time comes to for our single-threaded path.
            return ", ".join(
                f"{what} {'met' if value <= limit else 'NOT met'}"
                for what, value in (("wall", wall), ("CPU", cpu))
            )

        print(f"targets: write <= 2 s ({verdict(*t['w'], 2.0)}); "
              f"read <= 1 s ({verdict(*t['r'], 1.0)})")  # fmt: skip
        print(f"RATIO seg_read_vs_dcmqi {t_rd / t_rf:.2f}")
        print(f"RATIO seg_write_vs_dcmqi {t_wd / t_w:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hackathon day at scale: a queue of python submissions, 1 vs 2 sandboxes at once, and the
sandbox's per-case overhead against running the same code directly.

Data: ``--cases`` liver phantoms (``--shape``) as the hidden phase of a challenge. Submissions:
``--submissions`` python packages from as many teams (each a smoothing + threshold "model",
distinct by a comment), one CPU core per sandbox (``limits.cpus: 1``), MLflow off.

1. Queue: every submission is queued twice, in two challenge folders; ``Challenge.evaluate``
   with ``workers=1`` scores one folder, ``workers=2`` the other (alternating which goes
   first when ``--repeat`` > 1). ``RATIO workers2_vs_1`` = time(1 worker) / time(2 workers)
   (target >= 1.7 on 2 cores; higher is better).
2. Overhead: one submission through ``Challenge.evaluate`` against the direct path: a fresh
   Python process that imports the package and runs ``predict`` over the same images (load,
   predict, save, as the sandbox worker does), then ``evaluate_dirs`` on the labels in this
   process. ``RATIO sandbox_overhead`` = sandbox / direct (target <= 1.1; lower is better).

The last line is ``RATIO workers2_vs_1``. ``--quick``: 4 submissions x 5 cases, for a sanity run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quiet import Quiet, cpu_mark, others_share

MODEL = """
    import numpy as np
    from scipy import ndimage

    def predict(image, affine, context):
        smooth = ndimage.gaussian_filter(image, 1.0)
        return ((smooth > 40) & (smooth < 200)).astype(np.uint8)
"""

DIRECT = """
import sys, importlib.util
from pathlib import Path
import nibabel as nib, numpy as np
pkg, images, out = map(Path, sys.argv[1:4])
spec = importlib.util.spec_from_file_location("predict", pkg / "predict.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
out.mkdir(parents=True, exist_ok=True)
for src in sorted(images.iterdir()):
    img = nib.load(str(src))
    labels = mod.predict(np.asarray(img.get_fdata(dtype=np.float32)), img.affine, pkg)
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), img.affine), str(out / src.name))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--submissions", type=int, default=30)
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--shape", type=int, nargs=3, default=[64, 64, 48])
    ap.add_argument("--repeat", type=int, default=1, help="rounds (median)")
    ap.add_argument("--quick", action="store_true", help="4 submissions x 5 cases")
    ap.add_argument("--busy-limit", type=float, default=0.1, help="wait for a quieter machine")
    ap.add_argument("--max-wait", type=float, default=60, help="s to wait in all")
    args = ap.parse_args()
    if args.quick:
        args.submissions, args.cases = 4, 5
    warnings.filterwarnings("ignore")

    from medai_lab.challenge import Challenge
    from medai_lab.challenge.sandbox import isolation
    from medai_lab.datasets import write_phantom_dataset
    from medai_lab.evaluation import evaluate_dirs

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-challenge-"))
    quiet = Quiet(args.busy_limit, args.max_wait)
    try:
        data = write_phantom_dataset(
            tmp / "hidden", "liver", args.cases, seed=500, shape=tuple(args.shape), progress=False
        )
        limits = {"cpus": 1, "memory_mb": 2048, "time_per_case_s": 120, "startup_s": 120,
                  "output_mb": 64, "submissions_per_day": 10_000}  # fmt: skip
        spec = {"name": "bench", "task": "liver", "limits": limits,
                "metrics": {"nsd_tolerance_mm": 2.0, "bootstrap": 1000},
                "phases": {"test": {"hidden": True, "data": str(data)}}}  # fmt: skip
        packages = []
        for i in range(args.submissions):
            pkg = tmp / "pkgs" / f"team{i:02d}"
            pkg.mkdir(parents=True)
            (pkg / "predict.py").write_text(textwrap.dedent(MODEL) + f"# team {i}\n")
            packages.append(pkg)

        def queue(name: str) -> Challenge:
            ch = Challenge.create(tmp / name, spec)
            for i, pkg in enumerate(packages):
                ch.submit(pkg, team=f"team{i:02d}")
            return ch

        def evaluate(ch: Challenge, workers: int) -> float:
            t0 = time.perf_counter()
            done = ch.evaluate(workers=workers, track=False)
            seconds = time.perf_counter() - t0
            bad = [(r["id"], r["status"], (r.get("score") or {}).get("failures"), r["notes"])
                   for r in done if r["status"] != "scored" or r["score"]["n_failed"]]  # fmt: skip
            if len(done) != len(packages) or bad:
                raise SystemExit(f"workers={workers}: {len(done)} done; failed: {bad}")
            return seconds

        times: dict[str, list[float]] = {"1": [], "2": [], "direct": [], "sandbox": []}
        busy: dict[str, list[float]] = {k: [] for k in times}
        for r in range(args.repeat):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                ch = queue(f"q{r}w{workers}")
                quiet.wait()
                mark = cpu_mark()
                times[str(workers)].append(evaluate(ch, workers))
                busy[str(workers)].append(others_share(mark))
            one = Challenge.create(tmp / f"one{r}", spec)
            one.submit(packages[0], team="team00")

            def direct(out: Path = tmp / f"direct{r}") -> None:
                cmd = [sys.executable, "-c", DIRECT, str(packages[0]), str(data / "imagesTr"),
                       str(out)]  # fmt: skip
                subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                evaluate_dirs(out, data / "labelsTr", {1: "liver", 2: "tumour"},
                              nsd_tolerance=2.0, workers=1, progress=False)  # fmt: skip

            for name in ("direct", "sandbox") if r % 2 == 0 else ("sandbox", "direct"):
                quiet.wait()
                mark = cpu_mark()
                t0 = time.perf_counter()
                if name == "direct":
                    direct()
                    times[name].append(time.perf_counter() - t0)
                else:
                    times[name].append(evaluate_one(one))
                busy[name].append(others_share(mark))
        med = {k: statistics.median(v) for k, v in times.items()}
        n = args.submissions * args.cases
        print(f"{args.submissions} python submissions x {args.cases} cases {args.shape}; "
              f"isolation: {isolation()}; cores: {os.cpu_count()}; "
              f"rounds: {args.repeat}")  # fmt: skip
        print(f"{'path':<52} {'median s':>9} {'s/case':>7}  rounds (busy share of others)")
        rows = {
            "1": ("queue, --workers 1", n),
            "2": ("queue, --workers 2", n),
            "direct": ("one submission, direct (fresh process + evaluate)", args.cases),
            "sandbox": ("one submission, sandbox (Challenge.evaluate)", args.cases),
        }
        for key, (desc, count) in rows.items():
            rounds = ", ".join(
                f"{t:.1f} ({b:.2f})" for t, b in zip(times[key], busy[key], strict=True)
            )
            print(f"{desc:<52} {med[key]:>9.2f} {med[key] / count:>7.3f}  {rounds}")
        print(f"benchmark took {time.perf_counter() - t_start:.0f} s")
        print(f"RATIO sandbox_overhead {med['sandbox'] / med['direct']:.3f}")
        print(f"RATIO workers2_vs_1 {med['1'] / med['2']:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def evaluate_one(ch: object) -> float:
    t0 = time.perf_counter()
    (res,) = ch.evaluate(track=False)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - t0
    if res["status"] != "scored" or res["score"]["n_failed"]:
        raise SystemExit(f"sandbox run failed: {res['score']['failures']} {res['notes']}")
    return seconds


if __name__ == "__main__":
    sys.exit(main())

"""Hackathon scoring: one exported model on the same cases, directly and through the sandbox.

Model: the liver ``cpu``-preset UNet (seeded random weights) exported to TorchScript with its
contract, as ``medai-lab export`` writes it. Cases: ``--cases`` liver phantoms at the preset's
default phantom grid (``--shape``, 1.5x1.5x2.5 mm), the hidden phase of a challenge.

Each round times, in alternating order:

- direct: what an instructor would run without hackathon mode, ``medai-lab predict MODEL
  IMAGES --out DIR`` in a fresh process (imports included), then ``evaluate_dirs`` on the
  labels (the ``medai-lab evaluate`` computation) in this process;
- sandbox: ``Challenge.evaluate()`` on a queued submission of the same model: working copy of
  the images, one confined worker (namespaces, rlimits, unprivileged user where possible) for
  all cases with per-case timeouts, output checks, the same evaluation, SQLite (MLflow off).

The sandbox gets every core (``limits.cpus``), like the direct run. Both predict with the same
``Predictor``; the per-case label maps are checked to agree. Times are medians over rounds.
``RATIO sandbox_overhead <x>`` = sandbox time / direct time (target <= 1.1; lower is better).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quiet import Quiet, cpu_mark, others_share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64])
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds (median)")
    ap.add_argument("--quick", action="store_true", help="1 round, 3 small cases")
    ap.add_argument("--busy-limit", type=float, default=0.1, help="wait for a quieter machine")
    ap.add_argument("--max-wait", type=float, default=120, help="s to wait in all")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.cases, args.shape = 1, 3, [64, 64, 48]
    warnings.filterwarnings("ignore")
    import nibabel as nib
    import numpy as np
    import torch

    from medai_lab.challenge import Challenge
    from medai_lab.challenge.sandbox import isolation
    from medai_lab.datasets import write_phantom_dataset
    from medai_lab.evaluation import evaluate_dirs
    from medai_lab.export import export_model
    from medai_lab.tasks import compose
    from medai_lab.tasks.module import build_network, export_contract

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-challenge-"))
    quiet = Quiet(args.busy_limit, args.max_wait)
    try:
        cfg = compose("liver", "cpu")
        torch.manual_seed(int(cfg["seed"]))
        n_classes = max(int(k) for k in cfg["task"]["labels"]) + 1
        net = build_network(cfg["model"], 1, n_classes).eval()
        model = tmp / "model" / "liver.ts"
        export_model(net, export_contract(cfg), model, "torchscript")
        data = write_phantom_dataset(
            tmp / "hidden", "liver", args.cases, seed=500, shape=tuple(args.shape), progress=False
        )
        labels = {1: "liver", 2: "tumour"}
        limits = {"cpus": os.cpu_count() or 1, "memory_mb": 8192, "time_per_case_s": 600,
                  "startup_s": 600, "output_mb": 256, "submissions_per_day": 1000}  # fmt: skip
        spec = {"name": "bench", "task": "liver", "limits": limits,
                "metrics": {"nsd_tolerance_mm": 2.0, "bootstrap": 1000},
                "phases": {"test": {"hidden": True, "data": str(data)}}}  # fmt: skip
        ch = Challenge.create(tmp / "challenge", spec)

        def direct(round_: int) -> tuple[float, Path]:
            out = tmp / f"direct{round_}"
            cmd = [sys.executable, "-m", "medai_lab.cli", "predict", str(model)]
            cmd += [str(data / "imagesTr"), "--out", str(out), "--quiet", "--device", "cpu"]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            evaluate_dirs(out, data / "labelsTr", labels, nsd_tolerance=2.0, progress=False)
            return time.perf_counter() - t0, out

        def sandboxed(round_: int) -> tuple[float, Path]:
            # a copy per round: identical content would be refused as a repeat
            sub = tmp / f"sub{round_}"
            sub.mkdir()
            shutil.copy(model, sub / "liver.ts")
            (sub / "liver.json").write_text(
                model.with_suffix(".json").read_text().replace("}", f', "round": {round_}}}', 1)
            )
            sid = ch.submit(sub / "liver.ts", team="bench")["id"]
            t0 = time.perf_counter()
            (res,) = ch.evaluate(track=False)
            seconds = time.perf_counter() - t0
            if res["status"] != "scored" or res["score"]["n_failed"]:
                raise SystemExit(f"sandbox run failed: {res['score']['failures']} {res['notes']}")
            return seconds, ch.root / "results" / str(sid) / "predictions"

        times: dict[str, list[float]] = {"direct": [], "sandbox": []}
        busy: dict[str, list[float]] = {"direct": [], "sandbox": []}
        outputs: dict[str, Path] = {}
        for r in range(args.repeat):
            order = ["direct", "sandbox"] if r % 2 == 0 else ["sandbox", "direct"]
            for name in order:
                quiet.wait()
                mark = cpu_mark()
                seconds, outputs[name] = (direct if name == "direct" else sandboxed)(r)
                times[name].append(seconds)
                busy[name].append(others_share(mark))
        for path in sorted(outputs["direct"].iterdir()):
            a = np.asarray(nib.load(path).dataobj)
            b = np.asarray(nib.load(outputs["sandbox"] / path.name).dataobj)
            if np.mean(a != b) > 1e-3:
                raise SystemExit(f"{path.name}: sandbox and direct predictions differ")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"model: liver cpu-preset UNet (TorchScript); {args.cases} cases {args.shape}")
        print(f"isolation: {isolation()}; cores: {os.cpu_count()}; rounds: {args.repeat}")
        print(f"{'path':<50} {'median s':>9} {'s/case':>7}  rounds (busy share of others)")
        paths = {
            "direct": "direct: medai-lab predict (fresh process) + evaluate",
            "sandbox": "sandbox: Challenge.evaluate (worker, checks, SQLite)",
        }
        for name, desc in paths.items():
            rounds = ", ".join(
                f"{t:.1f} ({b:.2f})" for t, b in zip(times[name], busy[name], strict=True)
            )
            print(f"{desc:<50} {med[name]:>9.2f} {med[name] / args.cases:>7.2f}  {rounds}")
        print(f"benchmark took {time.perf_counter() - t_start:.0f} s")
        print(f"RATIO sandbox_overhead {med['sandbox'] / med['direct']:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

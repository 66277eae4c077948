"""Submit-to-first-score latency through the Lab endpoint on a real hub (issue 20).

A real JupyterHub from the ``medai-lab hub --challenge DIR --challenge-workers 1``
configuration (pinned configurable-http-proxy, the ``challenge`` service supervising
``medai-lab challenge evaluate``), one participant logged in with a full JupyterLab server and
the MedAI Lab server extension. The clock runs from the POST to
``/user/NAME/medai-lab/api/challenge/submissions`` (a predictions folder in the server's folder,
as the Lab panel sends it) until ``GET .../submissions`` through the same endpoint says
``scored``: the server extension, the hub's proxy and service, the upload, the evaluator's
queue poll and the scoring.

Peer, same run: the organiser's path on the same machine with no hub, no HTTP and no service,
``Challenge.submit`` then ``Challenge.evaluate`` in this process on an equal submission into an
equal challenge. ``RATIO lab_vs_local`` = Lab latency / local time (1.0: the hub path adds
nothing; higher is worse), last line. Median over ``--repeat`` submissions.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hub import BenchHub


def challenge_spec(data: Path, cases: int, shape: tuple[int, int, int]) -> dict[str, object]:
    from medai_lab.datasets import write_phantom_dataset

    folder = write_phantom_dataset(
        data, "liver", cases, seed=0, shape=shape, spacing=(3.0, 3.0, 5.0), progress=False
    )
    return {
        "name": "bench-latency",
        "task": "liver",
        "metrics": {"ranking": ["dice"], "bootstrap": 100},
        "limits": {"submissions_per_day": 100},
        "phases": {"validation": {"hidden": False, "data": str(folder)}},
    }


def predictions(labels: Path, out: Path, variant: int) -> Path:
    """The true labels with one corner voxel marked (each submission differs: no duplicate)."""
    out.mkdir(parents=True)
    for f in sorted(labels.glob("*.nii.gz")):
        img = nib.load(f)
        data = np.asarray(img.dataobj, np.uint8).copy()
        data.reshape(-1)[variant] = 1  # a background corner voxel
        nib.save(nib.Nifti1Image(data, img.affine), out / f.name)
    return out


def lab_latency(hub: BenchHub, user: str, folder: str, timeout: float = 300) -> float:
    """Seconds from the Lab endpoint's POST to ``scored`` through the same endpoint."""
    lab = f"{hub.url}/user/{user}/medai-lab/api/challenge"
    auth = {"Authorization": f"token {hub.tokens[user]}"}
    t0 = time.perf_counter()
    r = requests.post(
        f"{lab}/submissions", json={"path": folder, "phase": "validation"}, headers=auth,
        timeout=120,
    )  # fmt: skip
    if r.status_code != 201:
        raise SystemExit(f"the Lab endpoint refused the submission: {r.status_code} {r.text}")
    sid = r.json()["id"]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = requests.get(f"{lab}/submissions", headers=auth, timeout=60).json()
        row = next((x for x in rows if x["id"] == sid), None)
        if row is not None and row["status"] in ("scored", "error"):
            if row["status"] != "scored":
                raise SystemExit(f"submission {sid} ended in error: {row}")
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise SystemExit(f"submission {sid} was not scored in {timeout:.0f} s")


def local_time(root: Path, spec: dict[str, object], preds: Path) -> float:
    from medai_lab.challenge import Challenge

    ch = Challenge.create(root, spec)
    t0 = time.perf_counter()
    ch.submit(preds, team="local", phase="validation", fmt="predictions")
    done = ch.evaluate(track=False, log=lambda *_: None)
    elapsed = time.perf_counter() - t0
    assert [r["status"] for r in done] == ["scored"], done
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--shape", type=int, nargs=3, default=[64, 64, 48])
    ap.add_argument("--repeat", type=int, default=3, help="submissions per path (median)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-challenge-hub-") as tmp:
        base = Path(tmp)
        spec = challenge_spec(base / "data", args.cases, tuple(args.shape))
        from medai_lab.challenge import Challenge

        root = base / "challenge"
        Challenge.create(root, spec)
        labels = Challenge.open(root).spec.phase("validation").labels
        hub = BenchHub(
            base / "hub", light=False, gpus="none", challenge_dir=str(root), challenge_workers=1
        )
        try:
            hub.sign_up("alice")
            print(f"METRIC login_to_usable_s {hub.login_to_usable('alice'):.2f}")
            home = base / "hub" / "homes" / "alice"
            lab = []
            for i in range(args.repeat):
                predictions(labels, home / f"preds{i}", variant=i + 1)
                lab.append(lab_latency(hub, "alice", f"preds{i}"))
                print(f"METRIC lab_submit_to_score_s[{i}] {lab[-1]:.2f}")
        finally:
            hub.close()
        local = []
        for i in range(args.repeat):
            preds = predictions(labels, base / f"local-preds{i}", variant=i + 1)
            local.append(local_time(base / f"local{i}", spec, preds))
            print(f"METRIC local_submit_and_evaluate_s[{i}] {local[-1]:.2f}")
            shutil.rmtree(base / f"local{i}")
    lab_s, local_s = statistics.median(lab), statistics.median(local)
    print(f"METRIC lab_submit_to_first_score_s {lab_s:.2f} (median of {args.repeat})")
    print(f"METRIC local_submit_and_evaluate_s {local_s:.2f} (median of {args.repeat})")
    print(f"RATIO lab_vs_local {lab_s / local_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the Job's containers run: ``python -I -B -m medai_lab.challenge.kube.entry predict|score``.

``predict`` (the submission's container): the same sandbox as ``challenge evaluate`` over the
phase's images; checked predictions and each case's outcome go to the hand-off folder.

``score`` (the trusted container): everything in the hand-off folder was within reach of the
submission's code, so it is read as untrusted. Only regular files named after the phase's
cases are copied (no links, no pipes, size-capped), a case the hand-off reports as failed
keeps that failure and no prediction, and every prediction is checked again on the image grid
(:func:`medai_lab.challenge.runner.run_submission`, ``predictions`` format) before it is scored
against the labels. The result folder ``results/<id>/`` appears complete (a rename) or not at
all: ``predictions/``, ``metrics.csv`` and ``result.json`` (read by :mod:`.collect`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from medai_lab.challenge.spec import Spec

RESULT_FILE = "result.json"
CLAIMS_FILE = "cases.json"
_MAX_CLAIMS_BYTES = 1 << 20


def predict(spec_file: Path, phase: str, fmt: str, submission: Path, out: Path) -> int:
    """Run the submission over the phase's images; write ``out/predictions`` + ``cases.json``."""
    import yaml

    from medai_lab import atomic
    from medai_lab.challenge.api import ENTRY
    from medai_lab.challenge.runner import run_submission
    from medai_lab.challenge.spec import parse_spec

    raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    # No labels in this container: the spec is validated against the images in their place.
    raw["phases"][phase]["labels"] = raw["phases"][phase]["images"]
    spec = parse_spec(raw, base=spec_file.parent)
    run = run_submission(
        spec, spec.phase(phase), fmt, submission, ENTRY[fmt], out / "predictions", [out]
    )
    claims = {"cases": {c: list(v) for c, v in run.cases.items()}, "notes": run.notes}
    atomic.write_text(out / CLAIMS_FILE, json.dumps(claims))
    return 0


def score(spec_file: Path, phase: str, handoff: Path, results: Path, submission_id: int) -> int:
    """Check and score the hand-off (see module docstring); write ``results/<id>/``."""
    from medai_lab import atomic
    from medai_lab.challenge.runner import RunResult, phase_cases, run_submission
    from medai_lab.challenge.scoring import aggregate, evaluate_predictions
    from medai_lab.challenge.spec import load_spec

    spec = load_spec(spec_file)
    ph = spec.phase(phase)
    names = list(phase_cases(ph))
    claims, notes = read_claims(handoff / CLAIMS_FILE, names, spec)
    final = results / str(int(submission_id))
    shutil.rmtree(final, ignore_errors=True)  # left by an earlier run of this submission
    with tempfile.TemporaryDirectory() as scratch:
        incoming = Path(scratch, "incoming")
        ok = [c for c in names if claims[c][0] == "ok"]
        copy_predictions(handoff / "predictions", incoming, ok, spec.limits.output_mb)
        with atomic.atomic_dir(final) as tmp:
            checked = run_submission(spec, ph, "predictions", incoming, "", tmp / "predictions", [])
            cases = {
                c: (claims[c][0] if claims[c][0] != "ok" else checked.cases[c][0], claims[c][1])
                for c in names
            }
            df = evaluate_predictions(spec, tmp / "predictions", ph.labels, tmp / "metrics.csv")
            failures = RunResult(tmp, cases).failures
            result = {
                "submission": int(submission_id),
                "cases": {c: list(v) for c, v in cases.items()},
                "rows": df.to_dict("records"),
                "score": {
                    "n_cases": len(cases),
                    "n_failed": sum(failures.values()),
                    "failures": failures,
                    **aggregate(df, spec),
                },
                "notes": notes,
            }
            (tmp / RESULT_FILE).write_text(json.dumps(result), encoding="utf-8")
    return 0


def read_claims(
    path: Path, names: list[str], spec: Spec
) -> tuple[dict[str, tuple[str, float | None]], list[str]]:
    """Each case's reported outcome, reduced to known categories and bounded seconds."""
    from medai_lab.challenge.worker import CATEGORIES

    try:
        data = json.loads(_read_regular(path, _MAX_CLAIMS_BYTES))
        reported, notes = data["cases"], data["notes"]
        if not isinstance(reported, dict) or not isinstance(notes, list):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        return {c: ("crash", None) for c in names}, ["handoff=invalid"]
    out: dict[str, tuple[str, float | None]] = {}
    for c in names:
        item = reported.get(c)
        status, seconds = item if isinstance(item, list) and len(item) == 2 else ("not_run", None)
        if status != "ok" and status not in CATEGORIES:
            status = "crash"
        out[c] = (status, _bounded(seconds, spec.limits.time_per_case_s))
    kept = [n for n in notes if isinstance(n, str) and len(n) < 80 and n.isascii()][:20]
    return out, kept


def _bounded(seconds: Any, limit: float) -> float | None:
    """A reported duration as a number in [0, limit], or None."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return min(max(float(seconds), 0.0), limit) if math.isfinite(seconds) else None


def copy_predictions(src: Path, dst: Path, names: list[str], max_mb: float) -> None:
    """Copy ``<case>.nii.gz`` / ``<case>.nii`` of ``names`` from ``src``: regular files only."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        dfd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        for case in names:
            for ext in (".nii.gz", ".nii"):
                try:
                    data = _read_regular(case + ext, int(max_mb * 2**20), dir_fd=dfd)
                except OSError:
                    continue
                (dst / (case + ext)).write_bytes(data)
                break
    finally:
        os.close(dfd)


def _read_regular(path: str | Path, limit: int, dir_fd: int | None = None) -> bytes:
    """Bytes of a regular file (not a link, pipe or device) of at most ``limit`` bytes."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a pipe must not block the scorer
    fd = os.open(path, flags, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"not a regular file: {path}")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than {limit} bytes: {path}")
    return data


def main(argv: list[str] | None = None) -> int:
    from medai_lab.errors import MedaiError

    parser = argparse.ArgumentParser(prog="python -m medai_lab.challenge.kube.entry")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("predict")
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--phase", required=True)
    p.add_argument("--format", required=True)
    p.add_argument("--submission", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score")
    s.add_argument("--spec", type=Path, required=True)
    s.add_argument("--phase", required=True)
    s.add_argument("--handoff", type=Path, required=True)
    s.add_argument("--results", type=Path, required=True)
    s.add_argument("--id", type=int, required=True)
    args = parser.parse_args(argv)
    for var in ("HOME", "TMPDIR", "MEDAI_SANDBOX_DIR"):  # emptyDirs start empty
        if os.environ.get(var):
            Path(os.environ[var]).mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = None  # TMPDIR exists now
    try:
        if args.step == "predict":
            return predict(args.spec, args.phase, args.format, args.submission, args.out)
        return score(args.spec, args.phase, args.handoff, args.results, args.id)
    except MedaiError as exc:
        print(f"medai-lab challenge {args.step}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

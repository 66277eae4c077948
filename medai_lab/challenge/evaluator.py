"""Score the queue with N sandboxes at once (``medai-lab challenge evaluate --workers N``).

Each of N threads claims a submission (:mod:`medai_lab.challenge.claims`: atomic, fair between
teams, at most ``limits.team_concurrency`` per team), takes a slot (:mod:`.slots`: its own CPU
cores, a GPU unit from the pool when there is one), runs the sandbox and scores the outputs.
The sandboxes are processes, so threads here only wait on them and on the database. A
heartbeat thread renews the leases; results are written only while the lease is held.

Failures that are the evaluator's, not the submission's:

- no space left (ENOSPC / EDQUOT) anywhere: the submission goes back to the queue untouched
  and the evaluator stops with one line (the leaderboard does not change);
- the sandbox cannot be set up or started: the submission is marked ``error`` with the note
  ``sandbox=not_started`` (not scored, so the leaderboard does not change) and the evaluator
  goes on with the next one.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medai_lab.challenge import claims
from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.runner import DiskFull, SandboxStartError, is_disk_full
from medai_lab.challenge.slots import Slot, SlotPool
from medai_lab.challenge.spec import ENTRY

if TYPE_CHECKING:
    from medai_lab.challenge.api import Challenge

_IDLE_S = 0.25


class Run:
    """Settings and shared state of one ``evaluate`` call."""

    def __init__(self, ch: Challenge, **opts: Any) -> None:
        self.ch = ch
        self.opts = opts
        self.lease = claims.new_lease()
        self.done: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: ChallengeError | None = None
        self.claimed = 0  # submissions claimed by this run
        self.busy = 0  # of those, being evaluated now

    def log(self, line: str) -> None:
        if self.opts.get("log") is not None:
            with self.log_lock:
                self.opts["log"](line)

    def room(self) -> bool:
        """Another submission may be claimed (max_submissions not reached, no stop)."""
        cap = self.opts.get("max_submissions")
        return not self.stop.is_set() and (cap is None or self.claimed < cap)


def evaluate_queue(
    ch: Challenge,
    *,
    workers: int = 1,
    max_submissions: int | None = None,
    watch_s: float = 0.0,
    track: bool = True,
    tracking_uri: str | None = None,
    sandbox_dir: Any = None,
    log: Callable[[str], None] | None = None,
    gpu_pool: Any = None,
    stale_s: float = claims.STALE_S,
) -> list[dict[str, Any]]:
    """See :meth:`medai_lab.challenge.Challenge.evaluate`."""
    limits = ch.spec.limits
    pool = SlotPool(workers, limits.cpus, limits.gpu, gpu_pool)
    run = Run(ch, max_submissions=max_submissions, track=track, tracking_uri=tracking_uri,
              sandbox_dir=sandbox_dir, log=log)  # fmt: skip
    for sid in claims.requeue_stale(ch.store, stale_s):
        run.log(f"submission {sid}: its evaluator stopped; queued again")
    from medai_lab.challenge.sandbox import sweep_orphans

    sweep_orphans(sandbox_dir)
    stop_at = time.monotonic() + max(0.0, watch_s)
    with claims.Heartbeat(ch.store, run.lease):
        threads = [
            threading.Thread(target=_loop, args=(run, pool, stop_at), name=f"evaluator-{i}")
            for i in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if run.fatal is not None:
        raise run.fatal
    return run.done


def _loop(run: Run, pool: SlotPool, stop_at: float) -> None:
    """One worker: claim, run in a slot, record; until the queue is done (or a stop)."""
    from medai_lab.challenge.api import describe_result

    ch, team_limit = run.ch, run.ch.spec.limits.team_concurrency
    while True:
        with run.lock:
            if not run.room():
                return
            row = claims.claim(ch.store, run.lease, team_limit)
            run.claimed += row is not None
            run.busy += row is not None
        if row is None:
            waiting = run.busy > 0 and claims.queued(ch.store) > 0  # held back by a team limit
            if time.monotonic() >= stop_at and not waiting:
                return
            time.sleep(_IDLE_S)
            continue
        slot = pool.acquire()
        try:
            res = evaluate_one(run, row, slot)
        finally:
            pool.release(slot)
            with run.lock:
                run.busy -= 1
        if res is not None:
            with run.lock:
                run.done.append(res)
            run.log(describe_result(res))


def evaluate_one(run: Run, row: dict[str, Any], slot: Slot) -> dict[str, Any] | None:
    """Run, score and record one claimed submission; its instructor view (None: handed back)."""
    from medai_lab.challenge.runner import run_submission
    from medai_lab.challenge.scoring import aggregate, evaluate_predictions

    ch, sid, lease = run.ch, int(row["id"]), run.lease
    phase = ch.spec.phase(row["phase"])
    out = ch.root / "results" / str(sid)
    hide = [ch.root] + [p for ph in ch.spec.phases for p in (ph.images, ph.labels)]
    try:
        shutil.rmtree(out, ignore_errors=True)  # left by an interrupted evaluator
        result = run_submission(
            ch.spec, phase, row["format"], ch.root / row["path"], ENTRY[row["format"]],
            out / "predictions", hide, run.opts["sandbox_dir"], slot,
        )  # fmt: skip
        df = evaluate_predictions(ch.spec, result.pred_dir, phase.labels, out / "metrics.csv")
        agg = aggregate(df, ch.spec)
    except SandboxStartError as exc:
        claims.finish(ch.store, sid, lease, "error", ["sandbox=not_started"])
        run.log(f"submission {sid}: {exc}; not scored, leaderboard unchanged")
        return ch.result(sid, team=None)
    except Exception as exc:
        if isinstance(exc, DiskFull) or is_disk_full(exc):
            shutil.rmtree(out, ignore_errors=True)
            # the database on the full disk too: the lease goes stale instead, and the next
            # evaluator's start queues the submission again
            with contextlib.suppress(Exception):
                claims.release(ch.store, sid, lease)
            run.fatal = ChallengeError(
                f"disk full while evaluating submission {sid} ({ch.root}): free space and run "
                "evaluate again; the submission is queued again and the leaderboard is unchanged"
            )
            run.stop.set()
            return None
        claims.finish(ch.store, sid, lease, "error", [f"evaluator error: {type(exc).__name__}"])
        return ch.result(sid, team=None)
    score = {
        "n_cases": len(result.cases),
        "n_failed": sum(result.failures.values()),
        "failures": result.failures,
        **agg,
    }
    notes = list(result.notes)
    if not claims.complete(
        ch.store, sid, lease, (result.cases, df.to_dict("records"), score), notes
    ):
        run.log(f"submission {sid}: another evaluator took it over; this result is discarded")
        return None
    if run.opts["track"]:
        try:
            from medai_lab.challenge.mlflow_log import log_submission

            run_id = log_submission(
                ch.spec, row, score, out / "metrics.csv", run.opts["tracking_uri"]
            )
            ch.store.set_run_id(sid, run_id)
        except Exception as exc:
            ch.store.add_note(sid, f"mlflow=failed ({type(exc).__name__})")
    return ch.result(sid, team=None)

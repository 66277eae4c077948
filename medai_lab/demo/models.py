"""The demo's model part: train, export, evaluate, report, with measured time estimates.

Quick (``medai-lab demo``): one template at the ``cpu`` preset on fewer phantoms, with as many
epochs as fit the rest of the demo's time budget at the speed measured here. Full
(``medai-lab demo --full``): lung, liver and heart at the ``cpu`` preset, announced up front
with the time it will take on this machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.demo.estimate import (
    Estimate,
    StepTimes,
    estimate,
    fit_epochs,
    format_duration,
    measure,
)
from medai_lab.demo.steps import Steps

if TYPE_CHECKING:
    from medai_lab.tasks.schema import TrainConfig

DICE_TARGET = 0.9  # what the cpu preset must reach on every task's phantoms
EXPERIMENT = "medai-lab-demo"
QUICK_CASES = 15  # 12 training, 3 validation phantoms
AFTER_TRAINING_S = 5.0  # report and overlays after the last evaluation


def quick_overrides(epochs: int, cases: int = QUICK_CASES) -> tuple[str, ...]:
    """Overrides for a brief run of ``epochs`` on ``cases`` phantoms (one validation at the end)."""
    return (
        f"data.phantom.cases={cases}",
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={epochs}",
        "eval.overlap=0.0",  # 8 instead of 12 windows per phantom: validation is most of it
    )


def _measure(cfg: TrainConfig, phantom_s: float, cache: dict[str, StepTimes]) -> StepTimes:
    """Step times of ``cfg``'s network, measured once per network shape."""
    key = json.dumps(
        [
            cfg.model.as_dict(),
            list(cfg.task.patch_size),
            cfg.data.batch_size,
            len(cfg.task.labels),
            cfg.eval.sw_batch_size,
        ],
        sort_keys=True,
    )
    if key not in cache:
        t = measure(cfg)
        cache[key] = StepTimes(t.train_step_s, t.infer_batch_s, phantom_s)
    return cache[key]


class _Ticker:
    """A line every ``every`` seconds while training runs: elapsed and the estimate."""

    def __init__(self, name: str, est: float, every: float = 20.0) -> None:
        self.name, self.est, self.every = name, est, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            spent = time.perf_counter() - self.start
            left = self.est - spent
            when = f"about {format_duration(left)} left" if left > 0 else "over the estimate"
            print(f"      {self.name}: {format_duration(spent)} so far, {when}", flush=True)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def model_part(
    out: Path,
    tasks: Sequence[str],
    preset: str,
    steps: Steps,
    *,
    quick_deadline: float | None = None,
    phantom_s: float = 0.3,
    progress: bool = False,
) -> int:
    """Train, export, evaluate and report ``tasks``; 0 when every check passed.

    ``quick_deadline`` (a ``time.perf_counter()`` value) makes a quick run: the ``cpu`` preset
    on fewer phantoms with the epochs that fit before it.
    """
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.suite import train_and_evaluate

    cache: dict[str, StepTimes] = {}
    plans: list[tuple[str, tuple[str, ...], Estimate]] = []
    for name in tasks:
        overrides: tuple[str, ...] = ()
        if quick_deadline is not None:
            # never more phantoms than the preset itself uses (the cpu preset: 80)
            cases = min(QUICK_CASES, compose(name, preset).data.phantom.cases)
            cfg = compose(name, preset, quick_overrides(1, cases))
            times = _measure(cfg, phantom_s, cache)
            budget = quick_deadline - time.perf_counter() - AFTER_TRAINING_S
            overrides = quick_overrides(fit_epochs(cfg, times, budget), cases)
        cfg = compose(name, preset, overrides)
        plans.append((name, overrides, estimate(cfg, _measure(cfg, phantom_s, cache))))
    if len(plans) > 1:
        total = sum(p[2].seconds for p in plans)
        done = time.strftime("%H:%M", time.localtime(time.time() + total))
        print(
            f"\nmodels: {', '.join(tasks)} at the '{preset}' preset: about "
            f"{format_duration(total)} on this machine (measured here; done about {done})"
        )
    outcomes = []
    for name, overrides, est in plans:
        steps.line(
            f"training {name} ('{preset}' preset{', brief' if overrides else ''}): "
            f"{est.describe()} at {_speed(cache)} measured here"
        )
        start = time.perf_counter()
        with _Ticker(f"training {name}", est.seconds, 20.0 if not progress else 1e9):
            outcome = train_and_evaluate(
                name, out, preset, overrides, track=EXPERIMENT, progress=progress
            )
        took = time.perf_counter() - start
        steps.sub(f"done in {format_duration(took)} (estimate {format_duration(est.seconds)})")
        outcomes.append((outcome, est, took))
    return _report(
        out,
        [o for o, _, _ in outcomes],
        preset,
        steps,
        [(e, t) for _, e, t in outcomes],
        check_dice=quick_deadline is None and preset == "cpu",
    )


def _speed(cache: dict[str, StepTimes]) -> str:
    times = next(iter(cache.values()))
    return f"{times.train_step_s:.2f} s/step"


def _report(
    out: Path,
    outcomes: list[Any],
    preset: str,
    steps: Steps,
    timing: list[tuple[Estimate, float]],
    check_dice: bool,
) -> int:
    from medai_lab.tasks.report import format_table, summary_rows, write_html_report
    from medai_lab.tracking import resolve_tracking_uri, ui_command

    for o in outcomes:
        steps.line(f"exported {o.task} to TorchScript: {o.model}")
        dice = ", ".join(f"{k} {v:.3f}" for k, v in o.dice().items())
        steps.line(
            f"evaluated {o.task}: {int(o.eval_table['case'].nunique())} validation cases "
            f"predicted from the export, Dice {dice}"
        )
    uri = resolve_tracking_uri()
    ui = ui_command(uri)
    links = run_links(uri, [o.run_id for o in outcomes if o.run_id])
    rows = summary_rows(outcomes, DICE_TARGET)
    report = write_html_report(outcomes, out / "report.html", DICE_TARGET, ui)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary["models"] = {
        "preset": preset,
        "tasks": rows,
        "experiment": EXPERIMENT,
        "run_urls": links,
        "timing": [
            {"task": o.task, "estimate_s": round(e.seconds, 1), "actual_s": round(t, 1)}
            for o, (e, t) in zip(outcomes, timing, strict=True)
        ],
    }
    checks = summary.setdefault("checks", {})
    if check_dice:
        for row in rows:
            checks[f"{row['task']}: Dice >= {DICE_TARGET}"] = bool(row["passed"])
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    steps.line(f"report {report} and MLflow experiment '{EXPERIMENT}'")
    print("\n" + format_table(rows))
    print(f"\nMLflow UI: {ui}")
    for url in links:
        print(f"  then open {url}")
    if not check_dice:
        print(f"\n(a brief run: Dice >= {DICE_TARGET} is checked by `medai-lab demo --full`)")
    failed = [name for name, ok in checks.items() if not ok]
    for name in failed:
        print(f"  FAIL  {name}")
    return 1 if failed else 0


def run_links(
    uri: str, run_ids: Sequence[str], host: str = "127.0.0.1", port: int = 5000
) -> list[str]:
    """Browser links to ``run_ids`` in the UI that :func:`ui_command` starts (or the server)."""
    if not run_ids:
        return []
    from medai_lab.tracking import make_client

    client = make_client(uri)
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://{host}:{port}"
    out = []
    for run_id in run_ids:
        exp = client.get_run(run_id).info.experiment_id
        out.append(f"{base}/#/experiments/{exp}/runs/{run_id}")
    return out

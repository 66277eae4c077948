"""Training throughput on liver phantoms, cpu preset: our template against the plain ways.

Phantoms (default 12 cases of 96x96x64 at 1.5x1.5x2.5 mm: 10 train, 2 validation) are written
once into a temporary folder. Every run trains the liver ``cpu`` preset (five-level UNet without
residual units, 64x64x32 patches, 2 volumes x 2 patches per step, Dice+CE, AdamW) for
``--epochs`` epochs; the first epoch is a warm-up and validation is not timed. Throughput is
patches (samples) per second over the timed epochs, from the start of each epoch (data loading
included) to the end of its last optimiser step. Each round runs every variant once (order
reversed on odd rounds); rates are medians over the timed epochs of all ``--rounds`` rounds,
which keeps an epoch slowed by another process on the machine from moving them much.

1. ``train()`` (Lightning template, ``data.cache=memory``) vs a hand-written PyTorch + MONAI loop:
   same network (``build_network``), transforms (``train_transforms``), CacheDataset, batch
   size, loss (DiceCELoss as in the module), AdamW and number of steps.
   ``RATIO train_template_vs_hand_loop <x>``: our samples/s over the hand loop's (pooled
   medians); the round-by-round ratios are printed too.
2. ``data.cache=memory`` vs ``data.cache=none`` (``train()`` both): ``RATIO cached_vs_uncached``;
   and the data pipeline alone (the template's train dataloader iterated for an epoch, no
   model): ``RATIO data_pipeline_cached_vs_uncached``.
3. MLflow tracking (``track="bench"``, a temporary SQLite store via ``MLFLOW_TRACKING_URI``):
   ``RATIO mlflow_overhead_percent <x>`` = ``TrackingCallback.overhead_s`` (time its hooks took
   on the training thread) over the fit's training-loop time, in percent. The wall-clock
   differences tracked vs untracked (training loop, run start, whole ``train()`` call) are
   printed too.

Epochs during which other processes used more than ``--busy-limit`` of the CPU are left out
(unless all were): on 2 cores another process stalls both training threads, not just one.
``--shape 192 192 128 --spacing 0.75 0.75 1.25`` (same field of view, resampled to the preset's
1.5x1.5x2.5 mm) shows the cache where loading and resampling cost more than a step.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quiet import Quiet, cpu_mark, others_share

TASK, PRESET = "liver", "cpu"
BUSY_LIMIT = 0.1  # epochs during which other processes used more of the CPU are left out


@dataclass
class Epoch:
    seconds: float = 0.0  # epoch start (before its first batch is fetched) to last step end
    compute: float = 0.0  # forward, loss, backward, optimiser step
    samples: int = 0
    steps: int = 0
    busy: float = 0.0  # share of the CPU other processes used during the epoch


@dataclass
class Run:
    name: str
    epochs: list[Epoch] = field(default_factory=list)
    loop_s: float = 0.0  # whole training loop (Lightning: on_train_start -> on_train_end)
    start_s: float = 0.0  # Lightning: on_fit_start -> on_train_start
    wall_s: float = 0.0  # the whole call (train(): config, data, fit, evaluation, tracking)
    overhead_s: float = float("nan")  # TrackingCallback.overhead_s
    setup_s: float = 0.0  # hand loop: CacheDataset fill
    others: float = float("nan")  # share of the CPU other processes used during the loop


def make_clock() -> Any:
    """A Lightning callback recording epoch and step boundaries (imports Lightning)."""
    import pytorch_lightning as pl

    from medai_lab.tracking.callback import TrackingCallback

    class Clock(pl.Callback):
        def __init__(self) -> None:
            self.run = Run("")
            self.tracker: Any = None
            self._fit = self._train = self._epoch = self._batch = 0.0
            self._mark = self._epoch_mark = cpu_mark()

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            self._fit = time.perf_counter()

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self._train = time.perf_counter()
            self.run.start_s = self._train - self._fit
            self._mark = cpu_mark()

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.run.epochs.append(Epoch())
            self._epoch_mark = cpu_mark()
            self._epoch = time.perf_counter()

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, i: int) -> None:
            self._batch = time.perf_counter()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, i: int
        ) -> None:
            now = time.perf_counter()
            e = self.run.epochs[-1]
            e.seconds = now - self._epoch
            e.compute += now - self._batch
            e.samples += len(batch["image"])
            e.steps += 1
            e.busy = others_share(self._epoch_mark)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.run.loop_s = time.perf_counter() - self._train
            self.run.others = others_share(self._mark)
            self.tracker = TrackingCallback.of(trainer)

    return Clock()


def run_template(name: str, data: Path, out: Path, epochs: int, cache: str, track: bool) -> Run:
    """``train()`` as a user calls it, timed by a callback."""
    from medai_lab.tasks.runner import train

    clock = make_clock()
    overrides = [
        f"trainer.max_epochs={epochs}",
        f"trainer.check_val_every_n_epoch={epochs}",  # validate once, after the last epoch
        f"data.cache={cache}",
    ]
    t0 = time.perf_counter()
    train(
        TASK,
        PRESET,
        data,
        overrides,
        out_dir=out,
        progress=False,
        callbacks=[clock],
        track="bench" if track else False,
    )
    run = clock.run
    run.name, run.wall_s = name, time.perf_counter() - t0
    if clock.tracker is not None:
        run.overhead_s = clock.tracker.overhead_s
    shutil.rmtree(out, ignore_errors=True)
    return run


def run_hand_loop(data: Path, epochs: int) -> Run:
    """The same training written the plain way: PyTorch loop, MONAI dataset/loader/loss."""
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss

    from medai_lab.datasets.msd import find_cases, split_cases
    from medai_lab.datasets.transforms import train_transforms
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.module import build_network

    cfg = compose(TASK, PRESET)
    seed = cfg.seed
    train_cases, _ = split_cases(find_cases(data), cfg.data.val_fraction, seed)
    torch.use_deterministic_algorithms(False)  # a Trainer(deterministic=True) left it on
    torch.manual_seed(seed)
    n_classes = max(cfg.task.labels) + 1
    net = build_network(cfg.model, 1, n_classes)
    lcfg, ocfg = cfg.loss, cfg.optim
    loss_fn = DiceCELoss(
        to_onehot_y=True,
        softmax=True,
        include_background=lcfg.include_background,
        lambda_dice=lcfg.lambda_dice,
        lambda_ce=lcfg.lambda_ce,
        batch=lcfg.batch,
        weight=torch.tensor(lcfg.class_weights) if lcfg.class_weights else None,
    )
    opt = torch.optim.AdamW(
        net.parameters(), lr=ocfg.lr, weight_decay=ocfg.weight_decay, betas=(ocfg.momentum, 0.999)
    )
    t0 = time.perf_counter()
    ds = CacheDataset(train_cases, train_transforms(cfg), num_workers=2, progress=False)
    setup_s = time.perf_counter() - t0
    loader = DataLoader(ds, batch_size=cfg.data.batch_size, shuffle=True)
    run = Run("hand loop", setup_s=setup_s)
    net.train()
    t_loop, mark = time.perf_counter(), cpu_mark()
    for _ in range(epochs):
        e = Epoch()
        epoch_mark = cpu_mark()
        start = time.perf_counter()
        for batch in loader:
            t = time.perf_counter()
            x, y = batch["image"], batch["label"]
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            now = time.perf_counter()
            e.compute += now - t
            e.seconds = now - start
            e.samples += len(x)
            e.steps += 1
        e.busy = others_share(epoch_mark)
        run.epochs.append(e)
    run.loop_s = time.perf_counter() - t_loop
    run.others = others_share(mark)
    run.wall_s = time.perf_counter() - t0
    return run


def data_pipeline(data: Path, epochs: int, quiet: Quiet) -> dict[str, Any]:
    """The template's train dataloader alone, cache memory vs none, epochs interleaved."""
    from medai_lab.datasets.msd import SegmentationDataModule
    from medai_lab.tasks.config import compose

    loaders, fill = {}, {}
    for cache in ("memory", "none"):
        cfg = compose(TASK, PRESET, [f"data.cache={cache}"])
        dm = SegmentationDataModule(cfg, data, progress=False)
        t0 = time.perf_counter()
        dm.setup("fit")
        fill[cache] = time.perf_counter() - t0
        loaders[cache] = dm.train_dataloader()
    rates: dict[str, list[tuple[float, float]]] = {"memory": [], "none": []}
    for epoch in range(epochs + 1):  # epoch 0: warm-up
        for cache, loader in loaders.items():
            loader.sampler.set_epoch(epoch)
            quiet.wait()
            mark = cpu_mark()
            t0 = time.perf_counter()
            n = sum(len(b["image"]) for b in loader)
            if epoch:
                rates[cache].append((n / (time.perf_counter() - t0), others_share(mark)))
    out: dict[str, float] = {}
    for cache, values in rates.items():
        clean = [r for r, busy in values if busy <= BUSY_LIMIT] or [r for r, _ in values]
        out[cache] = statistics.median(clean)
    return {"fill": fill, "rate": out, "samples": n}


def timed_epochs(runs: list[Run]) -> list[Epoch]:
    """The timed epochs of all rounds; those another process disturbed only if all were."""
    epochs = [e for r in runs for e in r.epochs[1:]]
    return [e for e in epochs if e.busy <= BUSY_LIMIT] or epochs


def pooled(runs: list[Run], fn: Any) -> float:
    """Median of ``fn(epoch)`` over the timed epochs of all rounds (robust to noisy epochs)."""
    return statistics.median(fn(e) for e in timed_epochs(runs))


def median(runs: list[Run], fn: Any) -> float:
    return statistics.median(fn(r) for r in runs)


def rate(e: Epoch) -> float:
    return e.samples / e.seconds


def main() -> int:
    global BUSY_LIMIT
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=12, help="phantoms (80%% train, 20%% validation)")
    ap.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64])
    ap.add_argument("--spacing", type=float, nargs=3, default=[1.5, 1.5, 2.5])
    ap.add_argument("--epochs", type=int, default=8, help="per run; the first is not timed")
    ap.add_argument("--rounds", type=int, default=4, help="runs of every variant")
    ap.add_argument("--pipeline-epochs", type=int, default=5, help="data pipeline alone")
    ap.add_argument("--quick", action="store_true", help="about a minute: 8 cases, 2 rounds")
    ap.add_argument("--workdir", default=None, help="keep phantoms here (default: a temp dir)")
    ap.add_argument(
        "--busy-limit",
        type=float,
        default=BUSY_LIMIT,
        help="leave out epochs during which other processes used more of the CPU than this",
    )
    ap.add_argument(
        "--max-wait", type=float, default=240, help="s to wait in all for other processes"
    )
    args = ap.parse_args()
    if args.quick:
        args.cases, args.epochs, args.rounds, args.pipeline_epochs = 8, 4, 2, 3
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first is a warm-up)")

    BUSY_LIMIT = args.busy_limit
    quiet = Quiet(args.busy_limit, args.max_wait)
    warnings.filterwarnings("ignore")
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    t_start = time.perf_counter()
    load0 = os.getloadavg()

    import torch

    from medai_lab.datasets.phantom import write_phantom_dataset
    from medai_lab.tasks.config import compose
    from medai_lab.tracking.store import make_client

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    work = Path(args.workdir).resolve() if args.workdir else tmp
    shape, spacing = tuple(args.shape), tuple(args.spacing)
    key = "x".join(map(str, shape)) + "-" + "x".join(f"{s:g}" for s in spacing)
    data = work / f"phantoms-{TASK}-{args.cases}-{key}"
    if not (data / "dataset.json").is_file():
        write_phantom_dataset(data, TASK, args.cases, shape=shape, spacing=spacing, progress=False)
    uri = f"sqlite:///{(tmp / 'mlflow.db').as_posix()}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    t0 = time.perf_counter()
    make_client(uri).search_experiments()  # creates the store (schema migrations) once
    store_s = time.perf_counter() - t0

    cfg = compose(TASK, PRESET)
    d = cfg.data
    n_val = min(max(1, round(args.cases * d.val_fraction)), args.cases - 1)
    per_step = d.batch_size * d.samples_per_volume
    variants = ["template", "hand", "uncached", "tracked"]
    names = {
        "template": "template (cache memory)",
        "hand": "hand-written loop",
        "uncached": "template, cache none",
        "tracked": "template, MLflow",
    }
    runs: dict[str, list[Run]] = {v: [] for v in variants}
    try:
        # Imports, first-call costs and the MLflow experiment: paid here, not by round 1.
        first = run_template("warm-up", data, tmp / "runs-warmup", 1, "memory", True)
        for r in range(args.rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:
                quiet.wait()
                if v == "hand":
                    run = run_hand_loop(data, args.epochs)
                else:
                    cache = "none" if v == "uncached" else "memory"
                    out = tmp / f"runs-{v}-{r}"
                    run = run_template(names[v], data, out, args.epochs, cache, v == "tracked")
                run.name = names[v]
                runs[v].append(run)
                rates = " ".join(f"{rate(e):.1f}" for e in run.epochs[1:])
                print(
                    f"  round {r + 1} {run.name:<24} samples/s per epoch: {rates}; other "
                    f"processes used {100 * run.others:.0f}% of the CPU",
                    flush=True,
                )
        pipe = data_pipeline(data, args.pipeline_epochs, quiet)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()

    m = cfg.model.params
    print(
        f"{TASK} phantoms: {args.cases} cases {'x'.join(map(str, shape))} at "
        f"{'x'.join(f'{s:g}' for s in spacing)} mm ({args.cases - n_val} train / {n_val} val); "
        f"{PRESET} preset: {cfg.model.name} {m['channels']} res units {m['num_res_units']}, "
        f"patch {'x'.join(map(str, cfg.task.patch_size))}, {d.batch_size} volumes x "
        f"{d.samples_per_volume} patches = {per_step} samples/step"
    )
    print(
        f"{args.epochs} epochs per run (first not timed) x {args.rounds} rounds: medians over "
        f"the timed epochs during which other processes used <= {BUSY_LIMIT:.0%} of the CPU "
        f"(column 'epochs'; all of them where none was); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} cores; load average "
        f"{load0[0]:.2f} at start, {load1[0]:.2f} at end; waited {quiet.waited_s:.0f} s for a "
        "quiet machine"
    )
    print(
        f"{'run':<24} {'samples/s':>9} {'s/step':>7} {'compute':>8} {'other':>7} {'loop s':>7} "
        f"{'busy':>5} {'epochs':>6}"
    )
    for v in variants:
        rs = runs[v]
        sec = pooled(rs, lambda e: e.seconds / e.steps)
        comp = pooled(rs, lambda e: e.compute / e.steps)
        print(
            f"{rs[0].name:<24} {pooled(rs, rate):9.2f} {sec:7.3f} {comp:8.3f} "
            f"{pooled(rs, lambda e: (e.seconds - e.compute) / e.steps):7.3f} "
            f"{median(rs, lambda r: r.loop_s):7.1f} {median(rs, lambda r: r.others):5.0%} "
            f"{sum(e.busy <= BUSY_LIMIT for r in rs for e in r.epochs[1:]):>3}/"
            f"{args.rounds * (args.epochs - 1)}"
        )
    print(
        "  s/step = compute (forward, loss, backward, optimiser step) + other (data loading,"
        " framework); loop s: whole training loop incl. warm-up epoch and validation; busy:"
        " CPU share other processes on the machine used during it (median of the runs)"
    )

    template = pooled(runs["template"], rate)
    hand = pooled(runs["hand"], rate)
    uncached = pooled(runs["uncached"], rate)
    print(
        f"data pipeline alone (the template's train loader, no model; median of "
        f"{args.pipeline_epochs} epochs of {pipe['samples']} samples): cache memory "
        f"{pipe['rate']['memory']:.1f} samples/s, none {pipe['rate']['none']:.1f} samples/s; "
        f"filling the memory cache took {pipe['fill']['memory']:.2f} s"
    )

    tracked, plain = runs["tracked"], runs["template"]
    overhead = median(tracked, lambda r: 100 * r.overhead_s / r.loop_s)
    print(
        f"MLflow, SQLite store in a temp dir (creating it: {store_s:.1f} s once; first tracked "
        f"train() of the process, 1 epoch: {first.wall_s:.1f} s): tracking hooks on the training "
        f"thread {median(tracked, lambda r: r.overhead_s) * 1000:.0f} ms per run "
        f"({median(tracked, lambda r: r.overhead_s / len(r.epochs)) * 1000:.1f} ms per epoch) of "
        f"a {median(tracked, lambda r: r.loop_s):.1f} s training loop"
    )
    print(
        f"  tracked vs untracked (medians): samples/s {pooled(tracked, rate):.2f} vs "
        f"{template:.2f}, training loop {median(tracked, lambda r: r.loop_s):.2f} vs "
        f"{median(plain, lambda r: r.loop_s):.2f} s, fit start to first epoch "
        f"{median(tracked, lambda r: r.start_s):.2f} vs {median(plain, lambda r: r.start_s):.2f} s,"
        f" whole train() {median(tracked, lambda r: r.wall_s):.1f} vs "
        f"{median(plain, lambda r: r.wall_s):.1f} s"
    )
    # Paired by round (the two runs a few seconds apart): a slow spell of the machine that
    # lasts a run moves one round's ratio, not the pooled medians of a whole variant.
    paired = [
        statistics.median(rate(e) for e in t.epochs[1:])
        / statistics.median(rate(e) for e in h.epochs[1:])
        for t, h in zip(runs["template"], runs["hand"], strict=True)
    ]
    print(
        "template vs hand loop, round by round: "
        + " ".join(f"{x:.2f}" for x in paired)
        + f" (median {statistics.median(paired):.2f})"
    )
    print(f"benchmark took {time.perf_counter() - t_start:.0f} s")
    pipe_ratio = pipe["rate"]["memory"] / pipe["rate"]["none"]
    print(f"RATIO data_pipeline_cached_vs_uncached {pipe_ratio:.2f}")
    print(f"RATIO cached_vs_uncached {template / uncached:.2f}")
    print(f"RATIO mlflow_overhead_percent {overhead:.3f}")
    print(f"RATIO train_template_vs_hand_loop {template / hand:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GPU check: what MedAI Lab's GPU paths do on real hardware, in one run (<= 8 min on an H100).

    python benchmarks/gpu_check.py [--cpu] [--steps N] [--task NAME] [--json OUT.json]

Sections (each timed; one that fails records its error and the rest still run):

- inventory:  GPUs / MIG instances as the hub sees them (``hub.inventory.parse_inventory("auto")``)
- allocator:  the hub's allocator hands out the real GPU; a process started with the
              ``CUDA_VISIBLE_DEVICES`` it sets sees exactly that GPU
- templates:  every task of the catalogue (lung, liver, heart, and YAML-only tasks) at the
              ``gpu`` preset for a fixed number of optimiser steps
              (AMP as ``runtime_trainer`` chooses it: bf16 on an H100): samples/s, peak memory
- sliding:    sliding-window inference throughput (MONAI, as validation runs it)
- export:     TorchScript and ONNX (onnxruntime, CUDA provider when installed) vs eager
- ddp:        one-process DDP (NCCL on CUDA, gloo on CPU): init, all-reduce, a step
- lightning:  one real ``medai_lab.tasks.train`` run at the preset (phantoms, loader workers)

sliding, export, ddp and lightning measure one task: ``--task`` (default liver).

Without CUDA (or with ``--cpu``) every section runs on the CPU at tiny sizes (the ``smoke``
preset): the same code paths, for CI. Prints a table, writes JSON, ends with a RATIO line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medai_lab.tasks.schema import TrainConfig

DEFAULT_TASK = "liver"  # the task the single-network sections measure unless --task says


class Ctx:
    """Device, preset, sizes and the measured task of this run."""

    def __init__(self, cpu: bool, steps: int | None, work: Path, task: str = DEFAULT_TASK) -> None:
        import torch

        from medai_lab import catalogue

        self.task = catalogue.get(task).name  # one clear error for a task it does not know
        self.tasks = catalogue.names()

        self.cuda = torch.cuda.is_available() and not cpu
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.preset = "gpu" if self.cuda else "smoke"
        self.steps = steps or (20 if self.cuda else 2)
        self.volume = (256, 256, 160) if self.cuda else (48, 48, 32)
        self.work = work

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], repeat: int, sync: Callable[[], None]) -> float:
    """Median seconds of ``fn`` over ``repeat`` calls, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _template(ctx: Ctx, task: str) -> tuple[TrainConfig, Any]:
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.module import SegmentationModule

    cfg = compose(task, ctx.preset)
    return cfg, SegmentationModule(cfg)


def _precision(ctx: Ctx, cfg: TrainConfig) -> str:
    from medai_lab.tasks.runtime import runtime_trainer

    return str(runtime_trainer(cfg.trainer, cuda=ctx.cuda)["precision"])


def _autocast(ctx: Ctx, precision: str) -> Any:
    import contextlib

    import torch

    if precision.startswith("bf16"):
        return torch.autocast(ctx.device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(ctx.device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def inventory(ctx: Ctx) -> dict[str, Any]:
    from medai_lab.hub.inventory import describe, parse_inventory

    devices = parse_inventory("auto")
    return {"units": [d.to_dict() for d in devices], "described": describe(devices)}


def allocator(ctx: Ctx) -> dict[str, Any]:
    from medai_lab.hub.allocator import GpuAllocator
    from medai_lab.hub.inventory import parse_inventory

    alloc = GpuAllocator(parse_inventory("auto"), state_path=ctx.work / "gpu-state.sqlite")
    got = alloc.allocate("gpu-check")
    out: dict[str, Any] = {
        "profile": got.profile,
        "devices": [d.id for d in got.devices],
        "message": got.message,
    }
    if got.devices:
        visible = ",".join(d.visible for d in got.devices)
        code = (
            "import json, torch; n = torch.cuda.device_count(); "
            "print(json.dumps([n, torch.cuda.get_device_name(0) if n else '']))"
        )
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        count, name = json.loads(proc.stdout.strip().splitlines()[-1])
        out.update(
            visible=visible,
            child_sees=count,
            child_gpu=name,
            ok=count == len(got.devices) and name == got.devices[0].name,
        )
    else:
        out["ok"] = not ctx.cuda  # no GPU handed out is right only where there is none
    out["released"] = alloc.release("gpu-check")
    return out


def templates(ctx: Ctx) -> dict[str, Any]:
    return {task: _train_steps(ctx, task) for task in ctx.tasks}


def _train_steps(ctx: Ctx, task: str) -> dict[str, Any]:
    """``ctx.steps`` optimiser steps of ``task``'s network at the preset's batch and patch."""
    import torch

    cfg, module = _template(ctx, task)
    net, loss_fn = module.net.to(ctx.device), module.loss_fn
    precision = _precision(ctx, cfg)
    torch.backends.cudnn.benchmark = cfg.trainer.benchmark and ctx.cuda
    batch, patch = cfg.data.batch_size, list(cfg.task.patch_size)
    x = torch.randn(batch, 1, *patch, device=ctx.device)
    y = torch.randint(0, len(module.labels) + 1, (batch, 1, *patch), device=ctx.device).float()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    losses = []

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(ctx, precision):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))

    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # warm-up: cudnn autotuner, allocator
        step()
    ctx.sync()
    start = time.perf_counter()
    for _ in range(ctx.steps):
        step()
    ctx.sync()
    seconds = time.perf_counter() - start
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if ctx.cuda else None
    return {
        "patch": patch,
        "batch": batch,
        "precision": precision,
        "steps": ctx.steps,
        "samples_per_s": round(ctx.steps * batch / seconds, 2),
        "step_ms": round(1000 * seconds / ctx.steps, 1),
        "peak_mem_gib": peak,
        "ok": all(math.isfinite(v) for v in losses),  # finite losses under AMP
    }


def sliding(ctx: Ctx) -> dict[str, Any]:
    import torch
    from monai.inferers import sliding_window_inference

    cfg, module = _template(ctx, ctx.task)
    net = module.net.to(ctx.device).eval()
    ev = cfg.eval
    volume = torch.randn(1, 1, *ctx.volume, device=ctx.device)
    precision = _precision(ctx, cfg)

    def infer() -> None:
        with torch.inference_mode(), _autocast(ctx, precision):
            sliding_window_inference(
                volume,
                cfg.task.patch_size,
                ev.sw_batch_size,
                net,
                overlap=ev.overlap,
                mode=ev.mode,
            )

    seconds = _timed(infer, 3, ctx.sync)
    voxels = math.prod(ctx.volume)
    return {
        "volume": list(ctx.volume),
        "precision": precision,
        "seconds": round(seconds, 4),
        "mvoxels_per_s": round(voxels / seconds / 1e6, 2),
    }


def export(ctx: Ctx) -> dict[str, Any]:
    import torch

    from medai_lab.export import export_model
    from medai_lab.tasks.module import export_contract

    cfg, module = _template(ctx, ctx.task)
    contract = export_contract(cfg)
    ts = export_model(module.net, contract, ctx.work / f"{ctx.task}.ts", "torchscript")
    onnx = export_model(module.net, contract, ctx.work / f"{ctx.task}.onnx", "onnx")
    net = module.net.to(ctx.device).eval()
    scripted = torch.jit.load(str(ts.model), map_location=ctx.device)
    x = torch.randn(cfg.eval.sw_batch_size, 1, *contract["patch_size"], device=ctx.device)

    def run(model: Any) -> Callable[[], Any]:
        def call() -> Any:
            with torch.inference_mode():
                return model(x)

        return call

    eager_s = _timed(run(net), 5, ctx.sync)
    ts_s = _timed(run(scripted), 5, ctx.sync)
    import onnxruntime as ort

    wanted = ["CUDAExecutionProvider"] if ctx.cuda else []
    providers = [p for p in wanted if p in ort.get_available_providers()] + ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(onnx.model), providers=providers)
    feed = {"image": x.float().cpu().numpy()}
    onnx_s = _timed(lambda: session.run(None, feed), 5, lambda: None)
    with torch.inference_mode():
        diff = float((scripted(x) - net(x)).abs().max())
    return {
        "batch": list(x.shape),
        "eager_ms": round(1000 * eager_s, 2),
        "torchscript_ms": round(1000 * ts_s, 2),
        "onnx_ms": round(1000 * onnx_s, 2),
        "onnx_provider": session.get_providers()[0],
        "torchscript_max_abs_diff": diff,
        "torchscript_vs_eager": round(eager_s / ts_s, 3),
        "onnx_vs_eager": round(eager_s / onnx_s, 3),
    }


def ddp(ctx: Ctx) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    backend = "nccl" if ctx.cuda else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        init_s = time.perf_counter() - start
        t = torch.ones(4, device=ctx.device)
        dist.all_reduce(t)
        cfg, module = _template(ctx, ctx.task)
        model = DistributedDataParallel(
            module.net.to(ctx.device), device_ids=[ctx.device.index or 0] if ctx.cuda else None
        )
        x = torch.randn(1, 1, *cfg.task.patch_size, device=ctx.device)
        model(x).float().mean().backward()
        ctx.sync()
        nccl = ".".join(map(str, torch.cuda.nccl.version())) if ctx.cuda else None
        return {
            "backend": backend,
            "init_s": round(init_s, 3),
            "all_reduce_ok": bool(t.eq(1).all()),
            "step_ok": True,
            "nccl": nccl,
        }
    finally:
        dist.destroy_process_group()


def lightning(ctx: Ctx) -> dict[str, Any]:
    from medai_lab.tasks.runner import train

    overrides = [
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "data.phantom.cases=4" if ctx.cuda else "data.phantom.cases=2",
    ]
    start = time.perf_counter()
    result = train(ctx.task, ctx.preset, None, overrides, out_dir=ctx.work / "runs", progress=False)
    return {
        "task": ctx.task,
        "preset": ctx.preset,
        "precision": result.config.trainer.precision,
        "seconds": round(time.perf_counter() - start, 1),
        "dice_mean": round(float(result.metrics.get("dice_mean", float("nan"))), 3),
    }


SECTIONS = {
    "inventory": inventory,
    "allocator": allocator,
    "templates": templates,
    "sliding": sliding,
    "export": export,
    "ddp": ddp,
    "lightning": lightning,
}


def run(ctx: Ctx, only: list[str]) -> dict[str, Any]:
    import torch

    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if ctx.cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "preset": ctx.preset,
        "sections": {},
    }
    for name in only:
        start = time.perf_counter()
        try:
            result = SECTIONS[name](ctx)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        result["section_s"] = round(time.perf_counter() - start, 2)
        report["sections"][name] = result
        print(f"  {name:<10} {result['section_s']:>7.1f} s  {_brief(name, result)}", flush=True)
    return report


def _brief(name: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"ERROR {r['error']}"
    if name == "templates":
        return "; ".join(
            f"{t} {v['samples_per_s']} samples/s, {v['step_ms']} ms/step, "
            f"peak {v['peak_mem_gib']} GiB, {v['precision']}"
            for t, v in r.items()
            if isinstance(v, dict)
        )
    keys = {
        "inventory": ["described"],
        "allocator": ["profile", "devices", "child_gpu", "ok"],
        "sliding": ["volume", "mvoxels_per_s", "precision"],
        "export": ["eager_ms", "torchscript_ms", "onnx_ms", "onnx_provider"],
        "ddp": ["backend", "init_s", "all_reduce_ok", "nccl"],
        "lightning": ["preset", "precision", "seconds", "dice_mean"],
    }[name]
    return ", ".join(f"{k} {r[k]}" for k in keys if k in r)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="CPU mode even where CUDA is there")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per template")
    parser.add_argument("--json", dest="json_out", help="write the report here")
    parser.add_argument(
        "--task", default=DEFAULT_TASK, help="catalogue task the one-network sections measure"
    )
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    from medai_lab.errors import MedaiError

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        try:
            ctx = Ctx(args.cpu, args.steps, Path(tmp), args.task)
        except MedaiError as exc:
            print(f"gpu_check: error: {exc}", file=sys.stderr)
            return 2
        print(f"gpu_check on {'CUDA' if ctx.cuda else 'CPU (tiny sizes)'}, preset {ctx.preset}")
        report = run(ctx, args.only)
    text = json.dumps(report, indent=2, default=str)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n")
    else:
        print(text)
    failed = [n for n, r in report["sections"].items() if "error" in r or r.get("ok") is False]
    ratio = report["sections"].get("export", {}).get("torchscript_vs_eager", float("nan"))
    print(f"RATIO gpu_check_torchscript_vs_eager {ratio}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Sliding-window inference on one preprocessed CT volume: ours vs plain MONAI, exports vs eager.

Network: the liver ``cpu``-preset UNet from ``build_network`` (seeded random weights, eval
mode); input: a seeded random ``1x1x192x192x128`` float32 volume in [0, 1] (what the CT window
produces); windows of the preset's patch (64x64x32), overlap and blending from its contract
(0.25, gaussian). Every variant runs once as a warm-up (its logits are checked against the
eager ``Predictor``'s), then ``--repeat`` rounds run every variant once each (order reversed on
odd rounds); times are medians over the rounds. A call during which other processes used more
than ``--busy-limit`` of the CPU is timed again (twice at most): on 2 cores another process
stalls both inference threads, not just one.

1. ``Predictor.logits`` (``torch.inference_mode``, the contract's ``sw_batch_size``) vs
   ``monai.inferers.sliding_window_inference`` called the plain way (``torch.no_grad``, default
   ``sw_batch_size=1``, same roi, overlap and mode): ``RATIO infer_vs_sliding_window <x>``.
2. The same ``Predictor`` with the network replaced by its exports from ``export_model``,
   loaded with ``Predictor.load``: TorchScript as exported (trace + freeze) and ONNX in
   onnxruntime's default CPU session: ``RATIO torchscript_vs_eager``, ``RATIO onnx_vs_eager``.
   Other settings tried print as ``RATIO variant_<name>_vs_eager``:
   ``torch.jit.optimize_for_inference``, onnxruntime session options, larger ``sw_batch_size``
   (for eager too), and (unless ``--no-compile``) ``torch.compile`` and an AOTInductor package.

x = the other side's time over ours (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quiet import Quiet, cpu_mark, others_share

TOL = {"rtol": 1e-3, "atol": 1e-4}  # as export_model's own check


def ort_runner(path: Path, **options: Any) -> Callable[[Any], Any]:
    """Like ``load_exported``'s ONNX runner, with session options set (``config.<key>``)."""
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    for key, value in options.items():
        if key.startswith("config."):
            so.add_session_config_entry(key[len("config.") :], str(value))
        else:
            setattr(so, key, value)
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run(x: Any) -> Any:
        (y,) = session.run(None, {"image": x.detach().cpu().numpy().astype("float32")})
        return torch.from_numpy(y)

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", type=int, nargs=3, default=[192, 192, 128])
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (median)")
    ap.add_argument(
        "--sw-batch", type=int, nargs="*", default=[8, 16], help="larger sw_batch_size to try"
    )
    ap.add_argument("--quick", action="store_true", help="3 rounds, fewer variants")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip torch.compile and AOTInductor (~1 min)"
    )
    ap.add_argument(
        "--busy-limit",
        type=float,
        default=0.1,
        help="time a call again (twice at most) when other processes used more of the CPU",
    )
    ap.add_argument(
        "--max-wait", type=float, default=240, help="s to wait in all for other processes"
    )
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.sw_batch, args.no_compile = 3, [16], True
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    load0 = os.getloadavg()

    import onnxruntime as ort
    import torch
    from monai.inferers import sliding_window_inference

    from medai_lab.export import export_model
    from medai_lab.inference import Predictor
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.module import build_network, export_contract

    cfg = compose("liver", "cpu")
    contract = export_contract(cfg)
    torch.manual_seed(int(cfg["seed"]))
    n_classes = max(int(k) for k in cfg["task"]["labels"]) + 1
    net = build_network(cfg["model"], 1, n_classes).eval()
    x = torch.rand(1, 1, *args.shape, generator=torch.Generator().manual_seed(0))
    inf = contract["inference"]
    roi, overlap, mode = contract["patch_size"], float(inf["overlap"]), str(inf["mode"])
    sw = int(inf["sw_batch_size"])

    def plain() -> Any:
        with torch.no_grad():
            return sliding_window_inference(x, roi, 1, net, overlap=overlap, mode=mode)

    tmp = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    # one folder per format, as train(export=...) does: both sidecars are named model.json
    ts_path, onnx_path = tmp / "torchscript" / "model.ts", tmp / "onnx" / "model.onnx"
    try:
        t0 = time.perf_counter()
        export_model(net, contract, ts_path, "torchscript")
        ts_export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_model(net, contract, onnx_path, "onnx")
        onnx_export_s = time.perf_counter() - t0

        eager = Predictor(net, contract)
        ts = Predictor.load(ts_path)
        onnx = Predictor.load(onnx_path)
        ts_opt = torch.jit.optimize_for_inference(ts.network)
        cores = os.cpu_count() or 1
        onnx_opts = {  # name -> (description, session options)
            "onnx_nospin": (
                f"{cores} intra-op threads, no spinning",
                {"intra_op_num_threads": cores, "config.session.intra_op.allow_spinning": "0"},
            ),
            "onnx_graph_basic": (
                "graph optimisation BASIC (default ALL)",
                {"graph_optimization_level": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC},
            ),
        }
        # name -> (description, predictor); "plain" is the plain MONAI call
        variants: dict[str, tuple[str, Any]] = {
            "plain": ("plain sliding_window_inference (no_grad, sw_batch 1)", None),
            "eager": (f"Predictor.logits, eager (sw_batch {sw})", eager),
            "torchscript": (
                f"Predictor, TorchScript as exported: trace+freeze (sw_batch {sw})",
                ts,
            ),
            "onnx": (
                f"Predictor, ONNX as exported: onnxruntime defaults (sw_batch {sw})",
                onnx,
            ),
            "torchscript_optimized": (
                f"  TorchScript + torch.jit.optimize_for_inference (sw_batch {sw})",
                Predictor(ts_opt, contract),
            ),
        }
        for name, (desc, options) in onnx_opts.items():
            runner = ort_runner(onnx_path, **options)
            variants[name] = (f"  ONNX, {desc} (sw_batch {sw})", Predictor(runner, contract))
        for n in args.sw_batch:
            variants[f"eager_sw{n}"] = (
                f"  eager, sw_batch {n}",
                Predictor(net, contract, sw_batch_size=n),
            )
            variants[f"torchscript_optimized_sw{n}"] = (
                f"  TorchScript + optimize_for_inference, sw_batch {n}",
                Predictor(ts_opt, contract, sw_batch_size=n),
            )
            variants[f"onnx_sw{n}"] = (
                f"  ONNX defaults, sw_batch {n}",
                Predictor(onnx.network, contract, sw_batch_size=n),
            )
        compile_s: dict[str, float] = {}
        if not args.no_compile:  # not TorchScript or ONNX: what else the same network can do
            example = torch.rand(sw, 1, *roi)
            try:
                t0 = time.perf_counter()
                compiled = compile_inductor(net, example)
                compile_s["torch.compile"] = time.perf_counter() - t0
                variants["compiled"] = (
                    f"  eager + torch.compile (inductor, freezing) (sw_batch {sw})",
                    Predictor(compiled, contract),
                )
            except Exception as exc:  # compilers fail in many ways; report and go on
                print(f"torch.compile failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            try:
                t0 = time.perf_counter()
                aoti = export_aoti(net, example, tmp / "aoti" / "model.pt2")
                compile_s["AOTInductor"] = time.perf_counter() - t0
                variants["aoti"] = (
                    f"  AOTInductor .pt2 export (freezing, dynamic batch) (sw_batch {sw})",
                    Predictor(aoti, contract),
                )
            except Exception as exc:
                print(f"AOTInductor export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        calls = {k: (plain if p is None else _logits(p, x)) for k, (_, p) in variants.items()}

        # warm-up, and every variant's logits against the eager Predictor's
        ref = calls["eager"]()
        checks: dict[str, tuple[float, bool]] = {}
        for name, fn in calls.items():
            out = ref if name == "eager" else fn()
            diff = float((out - ref).abs().max())
            checks[name] = (diff, bool(torch.allclose(out, ref, **TOL)))
            del out
        quiet = Quiet(args.busy_limit, args.max_wait)
        times: dict[str, list[float]] = {k: [] for k in calls}
        others: dict[str, list[float]] = {k: [] for k in calls}  # CPU share of other processes
        order, retried = list(calls), 0
        for r in range(args.repeat):
            for name in order if r % 2 == 0 else order[::-1]:
                for attempt in range(3):
                    quiet.wait()
                    start = cpu_mark()
                    calls[name]()
                    wall, busy = time.perf_counter() - start[2], others_share(start)
                    if busy <= args.busy_limit or attempt == 2:
                        break
                    retried += 1
                times[name].append(wall)
                others[name].append(busy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()

    med = {k: statistics.median(v) for k, v in times.items()}
    m = cfg["model"]
    print(
        f"volume 1x1x{'x'.join(map(str, args.shape))} float32; liver cpu preset {m['name']} "
        f"{m['channels']} (random weights), roi {'x'.join(map(str, roi))}, overlap {overlap}, "
        f"{mode}; torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{ort.__version__}, {cores} cores"
    )
    print(
        f"median of {args.repeat} rounds after a warm-up; load average {load0[0]:.2f} at start, "
        f"{load1[0]:.2f} at end; waited {quiet.waited_s:.0f} s for a quiet machine, timed "
        f"{retried} calls again (other processes used > {args.busy_limit:.0%} of the CPU); "
        f"export took {ts_export_s:.1f} s (TorchScript), {onnx_export_s:.1f} s (ONNX)"
        + "".join(f", {v:.0f} s ({k})" for k, v in compile_s.items())
    )
    print(f"{'variant':<62} {'s':>6} {'vs eager':>8} {'max|diff|':>9} allclose  busy")
    for name, (desc, _) in variants.items():
        diff, ok = checks[name]
        busy = statistics.median(others[name])
        print(
            f"{desc:<62} {med[name]:6.2f} {med['eager'] / med[name]:8.2f} {diff:9.1e} "
            f"{'yes' if ok else 'NO':>8} {busy:5.0%}"
        )
    print(
        f"  allclose: rtol {TOL['rtol']}, atol {TOL['atol']} against the eager Predictor; busy: "
        "CPU share other processes used while it was timed (median; 0% = quiet machine)"
    )
    print(f"benchmark took {time.perf_counter() - t_start:.0f} s")
    for name in variants:
        if name not in ("plain", "eager", "torchscript", "onnx"):
            slug = re.sub(r"\W+", "_", name)
            print(f"RATIO variant_{slug}_vs_eager {med['eager'] / med[name]:.2f}")
    print(f"RATIO onnx_vs_eager {med['eager'] / med['onnx']:.2f}")
    print(f"RATIO torchscript_vs_eager {med['eager'] / med['torchscript']:.2f}")
    print(f"RATIO infer_vs_sliding_window {med['plain'] / med['eager']:.2f}")
    return 0


def compile_inductor(net: Any, example: Any) -> Any:
    """``torch.compile`` with weights frozen into the graph, compiled for ``example``'s shape."""
    import torch
    import torch._inductor.config as inductor

    compiled = torch.compile(net, dynamic=False)
    with inductor.patch(freezing=True), torch.inference_mode():
        compiled(example)
    return compiled


def export_aoti(net: Any, example: Any, path: Path) -> Any:
    """An AOTInductor package (``torch.export`` + inductor, frozen weights, any batch size)."""
    import torch
    import torch._inductor.config as inductor

    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=256)
    with torch.no_grad():
        program = torch.export.export(net, (example,), dynamic_shapes=({0: batch},))
    with inductor.patch(freezing=True):
        package = torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    return torch._inductor.aoti_load_package(package)


def _logits(predictor: Any, x: Any) -> Callable[[], Any]:
    return lambda: predictor.logits(x)


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/gpu_check.py in CPU mode: every section's code path that does not need CUDA.

On a GPU machine the same script runs the sections at the gpu preset; here it runs at tiny sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_gpu_check_runs_every_section_in_cpu_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--steps", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("RATIO gpu_check_torchscript_vs_eager ")
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert set(sections) == {"inventory", "allocator", "templates", "sliding", "export", "ddp",
                             "lightning"}  # fmt: skip
    assert not [name for name, r in sections.items() if "error" in r]
    assert report["preset"] == "smoke"  # CPU mode: tiny sizes
    # the hub's view: with --cpu on a GPU machine the allocator still sees NVML's GPUs
    if not sections["inventory"]["units"]:
        assert sections["allocator"]["profile"] == "cpu" and sections["allocator"]["ok"]
    templates = sections["templates"]
    assert set(templates) >= {"lung", "liver", "heart"}
    for task in ("lung", "liver", "heart"):
        assert templates[task]["samples_per_s"] > 0 and templates[task]["ok"]
        assert templates[task]["precision"] == "32-true"  # AMP only with CUDA
    assert sections["sliding"]["mvoxels_per_s"] > 0
    export = sections["export"]
    assert export["torchscript_max_abs_diff"] < 1e-3
    assert export["onnx_provider"] == "CPUExecutionProvider"
    assert sections["ddp"]["backend"] == "gloo" and sections["ddp"]["all_reduce_ok"]
    assert sections["lightning"]["precision"] == "32-true"
    # the table printed one line per section
    for name in sections:
        assert any(line.strip().startswith(name) for line in proc.stdout.splitlines())

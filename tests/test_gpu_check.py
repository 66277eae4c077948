"""benchmarks/gpu_check.py in CPU mode: every section's code path that does not need CUDA.

On a GPU machine the same script runs the sections at the gpu preset; here it runs at tiny sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from medai_lab import catalogue

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _spleen_task(folder: Path) -> Path:
    """A task that exists only as a YAML file in a user folder."""
    body = yaml.safe_load((catalogue.BUILTIN_DIR / "liver.yaml").read_text())
    body.update(name="spleen", labels={1: "spleen"}, keep_largest=[1])
    body["phantom"] = {"scene": "liver", "labels": {1: "liver"}}
    folder.mkdir()
    (folder / "spleen.yaml").write_text(yaml.safe_dump(body))
    return folder


def test_gpu_check_runs_every_section_in_cpu_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    tasks_dir = _spleen_task(tmp_path / "tasks")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--steps", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, catalogue.ENV: str(tasks_dir)},
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
    measured = {task for task, v in templates.items() if isinstance(v, dict)}
    assert measured == {"lung", "liver", "heart", "spleen"}  # the catalogue, YAML-only too
    for task in ("lung", "liver", "heart", "spleen"):
        assert templates[task]["samples_per_s"] > 0 and templates[task]["ok"]
        assert templates[task]["precision"] == "32-true"  # AMP only with CUDA
    assert sections["sliding"]["mvoxels_per_s"] > 0
    export = sections["export"]
    assert export["torchscript_max_abs_diff"] < 1e-3
    assert export["onnx_provider"] == "CPUExecutionProvider"
    assert sections["ddp"]["backend"] == "gloo" and sections["ddp"]["all_reduce_ok"]
    assert sections["lightning"]["precision"] == "32-true"
    assert sections["lightning"]["task"] == "liver"
    # the table printed one line per section
    for name in sections:
        assert any(line.strip().startswith(name) for line in proc.stdout.splitlines())


def test_gpu_check_refuses_a_task_the_catalogue_does_not_know(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--task", "kidney", "--only", "inventory"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "unknown task 'kidney'" in proc.stderr

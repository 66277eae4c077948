"""Helpers of the challenge tests: spec, submission packages, leftover-process check."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def spec_dict(phases: dict[str, Path], **limits: Any) -> dict[str, Any]:
    """A liver challenge on the phantom phases; small limits so failures come fast."""
    return {
        "name": "liver-test",
        "title": "Liver test challenge",
        "task": "liver",
        "metrics": {"nsd_tolerance_mm": 3.0, "ranking": ["dice", "hd95"], "bootstrap": 200},
        "limits": {
            "time_per_case_s": 10,
            "startup_s": 60,
            "memory_mb": 1024,
            "output_mb": 8,
            "submissions_per_day": 5,
            **limits,
        },
        "phases": {
            "validation": {"hidden": False, "data": str(phases["validation"])},
            "test": {"hidden": True, "data": str(phases["test"])},
        },
    }


def write_package(folder: Path, code: str, **files: bytes) -> Path:
    """A python-format submission: ``predict.py`` with ``code`` (dedented) and extra files."""
    folder.mkdir(parents=True)
    (folder / "predict.py").write_text(textwrap.dedent(code), encoding="utf-8")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


HONEST = """
    import numpy as np

    def predict(image, affine, context):
        # a threshold 'model': soft tissue brighter than 0 HU is liver
        return ((image > 40) & (image < 200)).astype(np.uint8)
"""


def sandbox_processes(base: Path) -> list[int]:
    """Pids of sandbox processes (workers, what they started) whose folders are under ``base``.

    Forked children keep the worker's command line, which names its folder; processes of other
    test runs on the machine have their folders elsewhere.
    """
    found = []
    needle = str(base).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"medai_lab.challenge.worker" in cmd and needle in cmd:
            found.append(int(pid))
    return found


def namespaces_or_skip() -> None:
    """Tests of isolation need root + unshare (CI runs as root); elsewhere they skip."""
    from medai_lab.challenge.sandbox import isolation

    if isolation() != "namespaces":
        if IN_CI:
            pytest.fail("CI must run the sandbox with namespaces (root + util-linux unshare)")
        pytest.skip("sandbox namespaces need root and util-linux unshare")

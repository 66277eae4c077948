"""Kernels load the extension by themselves through the shipped IPython kernel config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "jupyter-config" / "ipython"
KERNEL_CONFIG = CONFIG / "ipython_kernel_config.json"


def test_config_names_the_extension() -> None:
    config = json.loads(KERNEL_CONFIG.read_text())
    assert config == {"IPKernelApp": {"extra_extensions": ["medai_lab.kernel"]}}
    installed = Path(sys.prefix) / "etc" / "ipython" / "ipython_kernel_config.json"
    if installed.exists():  # the wheel (shared-data) put it where IPython looks
        assert json.loads(installed.read_text()) == config


def test_a_real_kernel_with_the_config_has_the_magic(tmp_path: Path, monkeypatch) -> None:
    """A real ipykernel reads the same file (here from its profile folder) and has %medai."""
    jupyter_client = pytest.importorskip("jupyter_client")
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.json").write_text(KERNEL_CONFIG.read_text())
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km.start_kernel(cwd=str(tmp_path))
    outputs: list[dict] = []
    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            "print('medai' in get_ipython().magics_manager.magics['line'])", timeout=60,
            output_hook=lambda msg: outputs.append(msg),
        )  # fmt: skip
        client.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert text.strip() == "True"

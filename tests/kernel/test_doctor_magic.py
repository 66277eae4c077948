"""``%medai doctor`` in a real InteractiveShell: the same report as ``medai-lab doctor``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from medai_lab.doctor import STATUSES


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "medai_lab")
    try:
        yield shell
    finally:
        shell.extension_manager.unload_extension("medai_lab")


def test_doctor_magic_prints_the_report(ip, tmp_path, monkeypatch, capsys) -> None:
    key = tmp_path / "deid.key"
    key.write_text("cd" * 32 + "\n")
    key.chmod(0o644)
    monkeypatch.setenv("MEDAI_DEID_KEY_FILE", str(key))
    assert ip.run_line_magic("medai", "doctor") is None
    out = capsys.readouterr().out
    assert out.startswith("MedAI Lab doctor")
    lines = [ln.split() for ln in out.splitlines()[1:] if ln.startswith("  ") and ln.split()]
    rows = [ln for ln in lines if ln[0] in STATUSES]
    assert {"python", "torch", "gpu", "mlflow"} <= {r[1] for r in rows}
    assert next(r[:3] for r in rows if r[1] == "deid") == ["fail", "deid", "key"]
    assert f"chmod 600 {key}" in out


def test_help_lists_doctor(ip, capsys) -> None:
    ip.run_line_magic("medai", "help")
    assert "%medai doctor" in capsys.readouterr().out

"""Run card, config flattening, store resolution and the light import (no Lightning fits)."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from medai_lab.tracking import (
    build_run_card,
    data_manifest,
    default_tracking_uri,
    flatten_config,
    ui_command,
    write_run_card,
)
from medai_lab.tracking.params import sanitize_key
from medai_lab.tracking.runcard import repo_root


def make_data(root: Path) -> list[Path]:
    files = {"pat_a/ct.nii.gz": b"ct-a", "pat_a/seg.nii.gz": b"seg-a", "pat_b/ct.nii.gz": b"ct-b"}
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return [root / rel for rel in files]


def test_data_manifest_hash_is_relative_and_content_based(tmp_path: Path) -> None:
    one, two = make_data(tmp_path / "one" / "cohort"), make_data(tmp_path / "elsewhere")
    manifest = data_manifest(one)
    lines = "".join(
        f"{p.relative_to(tmp_path / 'one' / 'cohort').as_posix()}\t{p.stat().st_size}\t"
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in sorted(one, key=lambda p: p.relative_to(tmp_path / "one" / "cohort").as_posix())
    )
    assert manifest == {
        "manifest_sha256": hashlib.sha256(lines.encode()).hexdigest(),
        "file_count": 3,
        "total_bytes": 13,
    }
    assert data_manifest(list(reversed(two)))["manifest_sha256"] == manifest["manifest_sha256"]
    two[0].write_bytes(b"ct-A")
    assert data_manifest(two)["manifest_sha256"] != manifest["manifest_sha256"]
    with pytest.raises(ValueError, match="outside the data root"):
        data_manifest(one, data_root=tmp_path / "elsewhere")


def test_run_card_contents_and_files(tmp_path: Path) -> None:
    files = make_data(tmp_path / "cohort")
    config = {"model": {"lr": 1e-3}, "out": tmp_path / "out"}
    card = build_run_card(config, files, ["medai-lab", "train", "lung"], "basic+retain-dates")

    env = card["environment"]
    assert env["torch"] == metadata.version("torch")
    assert env["mlflow"] == metadata.version("mlflow")
    assert env["monai"] == metadata.version("monai")
    assert env["lightning"] == metadata.version("pytorch-lightning")
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    lock = repo_root() / "environments" / "requirements-cpu.lock"
    assert env["lock_file"] == "environments/requirements-cpu.lock"
    assert env["lock_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        assert env["cuda"] is None and env["gpu"] is None
    if (repo_root() / ".git").exists() and shutil.which("git"):
        head = subprocess.run(
            ["git", "-C", str(repo_root()), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert card["code"]["git_commit"] == head
        assert isinstance(card["code"]["git_dirty"], bool)
    assert card["data"]["file_count"] == 3
    assert card["deid_profile"] == "basic+retain-dates"
    assert card["command_line"] == ["medai-lab", "train", "lung"]
    assert card["config"] == {"model": {"lr": 1e-3}, "out": (tmp_path / "out").as_posix()}

    json_path, md_path = write_run_card(card, tmp_path / "card")
    assert json.loads(json_path.read_text()) == card
    text = md_path.read_text()
    assert text.startswith("# Run card")
    for value in (card["data"]["manifest_sha256"], env["lock_sha256"], "medai-lab train lung"):
        assert value in text
    # no data paths (which can carry patient names) in the card
    assert "pat_a" not in json_path.read_text() and "pat_a" not in text


def test_run_card_without_data() -> None:
    card = build_run_card({}, None, None, None)
    assert card["data"] is None and card["command_line"] == sys.argv


def test_flatten_config() -> None:
    flat = flatten_config(
        {"model": {"lr": 0.1, "blocks": [1, 2], "opt": {"name": "adam"}}, "empty": {}, "p": None}
    )
    assert flat == {
        "model.lr": "0.1",
        "model.blocks": "[1, 2]",
        "model.opt.name": "adam",
        "empty": "{}",
        "p": "null",
    }
    long = flatten_config({"a": "y" * 10_000})["a"]
    assert len(long) == 6000 and long.endswith("...")
    assert sanitize_key("loss@0.5[x]") == "loss_0.5_x_"
    assert sanitize_key("/abs/../x") == "_abs_.._x"


def test_store_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert default_tracking_uri() == "http://mlflow.example:5000"
    assert ui_command() == "python -m webbrowser http://mlflow.example:5000"

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MEDAI_MLFLOW_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".medai-lab" / "mlflow"
    assert default_tracking_uri() == f"sqlite:///{(expected / 'mlflow.db').as_posix()}"
    assert (expected / "artifacts").is_dir()
    args = shlex.split(ui_command(port=5123))
    assert args[:2] == ["mlflow", "ui"]
    assert args[args.index("--backend-store-uri") + 1] == default_tracking_uri()
    assert args[args.index("--default-artifact-root") + 1] == (expected / "artifacts").as_uri()
    assert args[-4:] == ["--host", "127.0.0.1", "--port", "5123"]


def test_import_is_light() -> None:
    code = (
        "import sys, medai_lab.tracking\n"
        "heavy = ('mlflow', 'torch', 'pytorch_lightning', 'lightning', 'monai', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

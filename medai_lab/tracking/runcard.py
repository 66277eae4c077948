"""Run card: what a training run was made of (code, environment, data, command, config).

The card never holds patient identifiers: data files enter only through a manifest hash over
paths *relative to the data root* (plus sizes and content hashes), and the paths themselves are
not written out.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from medai_lab import __version__
from medai_lab.atomic import write_text
from medai_lab.cpushare import cpu_count
from medai_lab.tracking.params import jsonable

SCHEMA = "medai-lab/run-card/1"
LOCK_FILE = "environments/requirements-cpu.lock"
_CHUNK = 1 << 20


def repo_root() -> Path:
    """The folder holding the ``medai_lab`` package (a git checkout in development)."""
    return Path(__file__).resolve().parents[2]


def git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout the code runs from; ``(None, None)`` without one.

    Only a checkout whose top is ``root`` counts (an installed package inside some other repo
    does not). Dirty means tracked files differ from HEAD; untracked files are ignored.
    """
    root = root or repo_root()
    if not (root / ".git").exists():
        return None, None
    git = ["git", "--no-optional-locks", "-C", str(root)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (head or None), bool(status.strip())


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def lock_file_hash(root: Path | None = None) -> tuple[str | None, str | None]:
    """``(relative path, sha256)`` of ``environments/requirements-cpu.lock``; Nones if absent."""
    path = (root or repo_root()) / LOCK_FILE
    if not path.is_file():
        return None, None
    return LOCK_FILE, sha256_file(path)


def data_manifest(
    data_files: Sequence[str | os.PathLike[str]], data_root: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Hash of a set of data files, independent of where the data root sits on disk.

    The manifest is the sorted list of ``(relative path, size, sha256)``; its hash is the sha256
    of the lines ``"<relative posix path>\\t<size>\\t<sha256>\\n"`` in that order.

    Parameters
    ----------
    data_files
        The files (each must lie under ``data_root``).
    data_root
        Root the paths are made relative to; default: the deepest folder holding all files.

    Returns
    -------
    dict
        ``{"manifest_sha256", "file_count", "total_bytes"}``; no paths.
    """
    files = [Path(f).resolve() for f in data_files]
    if data_root is not None:
        root = Path(data_root).resolve()
    elif files:
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
    else:
        root = Path()
    rels = []
    for f in files:
        try:
            rels.append(f.relative_to(root).as_posix())
        except ValueError:
            raise ValueError("a data file lies outside the data root") from None
    workers = min(8, cpu_count(), max(1, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(sha256_file, files))
    entries = sorted(zip(rels, (f.stat().st_size for f in files), digests, strict=True))
    digest = hashlib.sha256()
    for rel, size, sha in entries:
        digest.update(f"{rel}\t{size}\t{sha}\n".encode())
    return {
        "manifest_sha256": digest.hexdigest(),
        "file_count": len(entries),
        "total_bytes": sum(size for _, size, _ in entries),
    }


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cuda() -> tuple[str | None, str | None]:
    """``(CUDA version, GPU name)`` when torch sees a GPU, else ``(None, None)``."""
    try:
        import torch
    except ImportError:
        return None, None
    try:
        if not torch.cuda.is_available():
            return None, None
        return torch.version.cuda, torch.cuda.get_device_name(0)
    except Exception:  # a broken driver must not stop a run
        return None, None


def build_run_card(
    config: Mapping[str, Any] | None,
    data_files: Sequence[Path] | None = None,
    command_line: Sequence[str] | None = None,
    deid_profile: str | None = None,
    *,
    data_root: Path | None = None,
) -> dict[str, Any]:
    """Collect the run card.

    Parameters
    ----------
    config
        The resolved training config (nested).
    data_files
        Files the run trains/validates on; hashed into a manifest (see :func:`data_manifest`).
    command_line
        ``argv`` that started the run; default ``sys.argv``.
    deid_profile
        Name of the de-identification profile the data went through, if any.
    data_root
        Root for the manifest's relative paths (default: common folder of ``data_files``).

    Returns
    -------
    dict
        JSON-safe card: ``schema, created_utc, code, environment, data, deid_profile,
        command_line, config``.
    """
    commit, dirty = git_state()
    lock_path, lock_sha = lock_file_hash()
    cuda, gpu = _cuda()
    data = None if data_files is None else data_manifest(data_files, data_root)
    return {
        "schema": SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code": {
            "package_version": __version__,
            "git_commit": commit,
            "git_dirty": dirty,
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "torch": _dist_version("torch"),
            "monai": _dist_version("monai", "monai-weekly"),
            "lightning": _dist_version("pytorch-lightning", "lightning"),
            "mlflow": _dist_version("mlflow", "mlflow-skinny"),
            "cuda": cuda,
            "gpu": gpu,
            "lock_file": lock_path,
            "lock_sha256": lock_sha,
        },
        "data": data,
        "deid_profile": deid_profile,
        "command_line": list(sys.argv if command_line is None else command_line),
        "config": jsonable(dict(config or {})),
    }


def render_markdown(card: Mapping[str, Any]) -> str:
    """A readable Markdown version of a run card."""

    def row(name: str, value: Any) -> str:
        shown = "–" if value is None else f"`{value}`"
        return f"| {name} | {shown} |"

    code, env = card.get("code") or {}, card.get("environment") or {}
    data = card.get("data")
    lines = [
        "# Run card",
        "",
        f"Created {card.get('created_utc', '?')} ({card.get('schema', '?')}).",
        "",
        "## Code",
        "",
        "| | |",
        "|---|---|",
        row("medai-lab", code.get("package_version")),
        row("git commit", code.get("git_commit")),
        row("uncommitted changes", code.get("git_dirty")),
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
        *(row(k, env.get(k)) for k in ("python", "platform", "torch", "monai", "lightning")),
        *(row(k, env.get(k)) for k in ("mlflow", "cuda", "gpu", "lock_file", "lock_sha256")),
        "",
        "## Data",
        "",
    ]
    if data:
        lines += [
            "| | |",
            "|---|---|",
            row("files", data.get("file_count")),
            row("bytes", data.get("total_bytes")),
            row("manifest sha256", data.get("manifest_sha256")),
            row("de-identification profile", card.get("deid_profile")),
        ]
    else:
        lines.append(f"No data manifest. De-identification profile: {card.get('deid_profile')}.")
    command = " ".join(card.get("command_line") or []) or "–"
    config = json.dumps(card.get("config") or {}, indent=2, sort_keys=True)
    lines += ["", "## Command line", "", "```", command, "```", "", "## Config", ""]
    lines += ["```json", config, "```", ""]
    return "\n".join(lines)


def write_run_card(card: Mapping[str, Any], folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``run_card.json`` and ``run_card.md`` into ``folder`` (created).

    Returns
    -------
    tuple of Path
        ``(json_path, md_path)``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    json_path = write_text(out / "run_card.json", json.dumps(jsonable(card), indent=2) + "\n")
    md_path = write_text(out / "run_card.md", render_markdown(card))
    return json_path, md_path

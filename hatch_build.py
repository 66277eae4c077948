"""Hatch build hook: bundle the viewer's TypeScript into medai_lab/widgets/static/ with npm.

The wheel ships the built ES module, so nothing is fetched at run time. Editable installs
(`make install`) build it through the Makefile instead; this hook only fills a missing or stale
bundle.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

JS = Path("medai_lab/widgets/js")
BUNDLE = Path("medai_lab/widgets/static/viewer.js")


def stale(root: Path) -> bool:
    bundle = root / BUNDLE
    if not bundle.is_file():
        return True
    sources = [p for p in (root / JS).rglob("*") if "node_modules" not in p.parts and p.is_file()]
    sources.append(root / "medai_lab/widgets/data/presets.json")
    return any(p.stat().st_mtime > bundle.stat().st_mtime for p in sources)


def build(root: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("building the viewer needs Node.js and npm (https://nodejs.org)")
    cwd = root / JS
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=cwd, check=True)
    subprocess.run([npm, "run", "build"], cwd=cwd, check=True)


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        if version != "editable" and (root / JS / "package.json").is_file() and stale(root):
            build(root)

"""Hatch build hook: build the front-end code with npm for non-editable wheels.

- the viewer's TypeScript -> medai_lab/widgets/static/viewer.js (esbuild ES module);
- the JupyterLab extension labext/ -> medai_lab/labextension/ (prebuilt; the viewer's sources
  are compiled into it too), shipped as share/jupyter/labextensions/medai-lab.

The wheel ships built code, so nothing is fetched at run time. Editable installs (`make install`)
build both through the Makefile instead; this hook only fills a missing or stale build.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

JS = Path("medai_lab/widgets/js")
BUNDLE = Path("medai_lab/widgets/static/viewer.js")
LABEXT = Path("labext")
LABEXT_OUT = Path("medai_lab/labextension/package.json")
PRESETS = Path("medai_lab/widgets/data/presets.json")
SKIP = {"node_modules", "lib"}


def files(root: Path, folder: Path) -> list[Path]:
    base = root / folder
    return [p for p in base.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(base).parts)]


def stale(root: Path, output: Path, sources: list[Path]) -> bool:
    out = root / output
    if not out.is_file():
        return True
    return any(p.stat().st_mtime > out.stat().st_mtime for p in sources)


def build(root: Path, folder: Path, script: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("building the front-end code needs Node.js and npm (https://nodejs.org)")
    cwd = root / folder
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=cwd, check=True)
    subprocess.run([npm, "run", script], cwd=cwd, check=True)


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)
        if version == "editable":
            return
        viewer = [*files(root, JS), root / PRESETS]
        if (root / JS / "package.json").is_file() and stale(root, BUNDLE, viewer):
            build(root, JS, "build")
        if (root / LABEXT / "package.json").is_file() and stale(
            root, LABEXT_OUT, [*files(root, LABEXT), *viewer]
        ):
            build(root, LABEXT, "build:prod")

"""Layers and import loops of ``medai_lab`` (module-level imports only, read with ``ast``).

A lower layer never imports a higher one (``../shared/ARCHITECTURE.md``, docs/architecture.md),
and no two modules import each other, directly or around a loop. Imports inside functions are
the lazy ones (torch, the CLI's subcommands ...) and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "medai_lab"

# Layer of each top-level module or subpackage, lowest first: a module may import its own
# layer and those below it.
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        ("medai_lab", "errors", "atomic", "progress", "display", "cpushare", "contract",
         "catalogue"),
        0,
    ),
    "io": 1,
    "deid": 2,
    "pacs": 3,
    **dict.fromkeys(("datasets", "evaluation", "tracking"), 3),
    **dict.fromkeys(("export", "inference"), 4),
    "tasks": 5,
    "challenge": 6,
    **dict.fromkeys(
        ("widgets", "kernel", "server", "hub", "doctor", "demo", "demo_command", "cli",
         "labextension", "__main__"),
        7,
    ),
}  # fmt: skip

# Loops being removed by work in progress elsewhere; each names who removes it.
KNOWN_CYCLES: set[frozenset[str]] = set()  # none left; add one only with a comment saying why


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, packages as their ``__init__``."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports at module level (not in functions/classes)."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.parse(path.read_bytes(), filename=str(path)).body:
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("medai_lab")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                if base == "medai_lab" or base.startswith("medai_lab."):
                    for alias in node.names:
                        sub = f"{base}.{alias.name}"
                        targets.add(sub if sub in mods else known(base))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    if key not in LAYERS:
        raise AssertionError(f"{module}: add {key!r} to LAYERS in tests/test_layers.py")
    return LAYERS[key]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(modules())


def test_no_import_loops(graph: dict[str, set[str]]) -> None:
    loops = [sorted(c) for c in cycles(graph) if frozenset(c) not in KNOWN_CYCLES]
    assert not loops, f"import loops: {loops}"


def test_no_lower_layer_imports_a_higher_one(graph: dict[str, set[str]]) -> None:
    upward = sorted(
        f"{src} -> {dst}" for src, dsts in graph.items() for dst in dsts if layer(dst) > layer(src)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_export_and_inference_never_import_tasks_or_lightning() -> None:
    """Not even inside functions at import time: the whole file's imports are checked."""
    for name, path in modules().items():
        if name.split(".")[1:2] not in (["export"], ["inference"]):
            continue
        tree = ast.parse(path.read_bytes())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                bad = [n for n in names if n.startswith(("medai_lab.tasks", "pytorch_lightning"))]
                assert not bad, f"{name} imports {bad} at module level"


def test_the_checker_sees_a_loop_and_an_upward_import(tmp_path: Path) -> None:
    """The checks can fail: a made-up package with a loop and an io -> tasks import."""
    pkg = tmp_path / "medai_lab"
    (pkg / "io").mkdir(parents=True)
    (pkg / "tasks").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "io" / "__init__.py").write_text("from medai_lab.io import a\n")
    (pkg / "io" / "a.py").write_text("from medai_lab.io.b import x\nfrom medai_lab import tasks\n")
    (pkg / "io" / "b.py").write_text("from . import a\n\ndef f():\n    import medai_lab.tasks\n")
    (pkg / "tasks" / "__init__.py").write_text("")
    g = import_graph(modules(pkg))
    assert cycles(g) == [{"medai_lab.io.a", "medai_lab.io.b"}]
    assert g["medai_lab.io.a"] == {"medai_lab.io.b", "medai_lab.tasks"}
    assert g["medai_lab.io.b"] == {"medai_lab.io.a"}  # the import inside f() is not counted
    assert layer("medai_lab.tasks") > layer("medai_lab.io.a")

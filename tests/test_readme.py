"""The README runs: every ``bash`` block of README.md and docs/*.md, in order, as a user would.

Our own runner (this file) rather than pytest-markdown-docs or phmdoctest: those run Python
blocks or compare a block's whole output, and neither has "skip with a stated reason" or
"the output must contain TEXT" markers; this needs no new dependency, and the convention
fits in a paragraph (below) that the people writing docs can follow.

Convention, per Markdown file:

- A fenced block with the info string ``bash`` is run with ``bash -e -o pipefail`` in the
  file's own temporary folder, after the file's earlier blocks (so a later block may use what
  an earlier one made). The folder holds a link ``.venv`` to the repository's environment,
  whose ``bin`` is first on PATH; HOME, MEDAI_MLFLOW_DIR, MEDAI_DEID_KEY_FILE and the caches
  point into the folder; MLFLOW_TRACKING_URI is unset. Each block has BLOCK_TIMEOUT_S.
- It must exit 0 without a Python traceback. Preceded by ``<!-- readme-test: expect "TEXT" -->``
  (one or more such lines) its output must also contain each TEXT.
- Preceded by ``<!-- readme-test: not-run (REASON) -->`` it is not run; it is listed with its
  reason in the test output (a ReadmeNotRun warning), never skipped silently.
- Blocks with any other info string (console, text, python, yaml, none) are not run.

"Preceded" means the marker lines come right before the opening fence (blank lines allowed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK_TIMEOUT_S = 300
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(not-run|expect)\s*(.*?)\s*-->\s*$")
TIMES: dict[str, tuple[int, float, int]] = {}  # file -> (blocks run, seconds, not run)
BLOCK_TIMES: list[tuple[str, float]] = []  # (file:line, seconds) of every block run


class ReadmeNotRun(UserWarning):
    """A documented shell block that the README test does not run, and why."""


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None = None
    expect: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file with the markers right before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        j, body = i + 1, []
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        block = Block(i + 1, lang, "\n".join(body) + "\n")
        k = i - 1
        while k >= 0 and (not lines[k].strip() or MARKER.match(lines[k])):
            marker = MARKER.match(lines[k])
            if marker and marker[1] == "not-run":
                block.not_run = marker[2].strip("() ") or "no reason given"
            elif marker:
                block.expect.append(marker[2].strip().strip('"'))
            k -= 1
        out.append(block)
        i = j + 1
    return out


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(work / "home"),
        MEDAI_MLFLOW_DIR=str(work / "home" / "mlflow"),
        MEDAI_DEID_KEY_FILE=str(work / "home" / "deid.key"),
        XDG_CACHE_HOME=str(work / "home" / "cache"),
        MEDAI_LAB_CACHE=str(work / "home" / "cache" / "medai-lab"),
        MPLBACKEND="Agg",
    )
    return env


@pytest.mark.parametrize("doc", DOCS, ids=[p.relative_to(ROOT).as_posix() for p in DOCS])
def test_shell_blocks_run_as_documented(doc: Path, tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run the documented shell blocks")
    work = tmp_path / "work"
    (work / "home").mkdir(parents=True)
    (work / ".venv").symlink_to(ROOT / ".venv")  # `source .venv/bin/activate` as in a clone
    name = doc.relative_to(ROOT).as_posix()
    ran, seconds, skipped = 0, 0.0, 0
    for block in blocks(doc):
        if block.lang != "bash":
            continue
        where = f"{name}:{block.line}"
        if block.not_run:
            skipped += 1
            warnings.warn(ReadmeNotRun(f"{where} not run: {block.not_run}"), stacklevel=1)
            continue
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=work, env=_env(work),
                capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where}: still running after {BLOCK_TIMEOUT_S} s:\n{block.code}")
        seconds += time.perf_counter() - start
        BLOCK_TIMES.append((where, time.perf_counter() - start))
        ran += 1
        output = proc.stdout + proc.stderr
        tail = output[-3000:]
        assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{block.code}\n{tail}"
        assert "Traceback (most recent call last)" not in output, f"{where}:\n{tail}"
        for text in block.expect:
            assert text in output, f"{where}: expected {text!r} in the output:\n{tail}"
    TIMES[name] = (ran, seconds, skipped)


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest):
    """The measurement, in the terminal summary: blocks run per file and their time."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TIMES:
        return
    with capture.global_and_fixture_disabled():  # shown with -q too, and in CI logs
        reporter.write_sep("-", "README blocks")
        for where, seconds in BLOCK_TIMES:
            reporter.write_line(f"{where}: {seconds:.1f} s")
        for name, (n, s, k) in TIMES.items():
            reporter.write_line(f"{name}: {n} block(s) run in {s:.1f} s, {k} not run")
        runs, total = sum(t[0] for t in TIMES.values()), sum(t[1] for t in TIMES.values())
        reporter.write_line(f"total: {runs} block(s) run in {total:.1f} s")


def test_markers_and_fences_are_read(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "<!-- readme-test: not-run (starts a server) -->\n```bash\nserve\n```\n"
        '<!-- readme-test: expect "wrote 2" -->\n\n```bash\necho wrote 2\n```\n'
        "- item\n\n  ```python\n  x = 1\n  ```\n```console\n$ ls\n```\n",
        encoding="utf-8",
    )
    got = [(b.line, b.lang, b.code, b.not_run, b.expect) for b in blocks(doc)]
    assert got == [
        (2, "bash", "serve\n", "starts a server", []),
        (7, "bash", "echo wrote 2\n", None, ["wrote 2"]),
        (12, "python", "x = 1\n", None, []),
        (15, "console", "$ ls\n", None, []),
    ]


@pytest.mark.parametrize("doc", DOCS, ids=[p.relative_to(ROOT).as_posix() for p in DOCS])
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    """A link a reader follows from a clone must lead to a file in that clone."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)|`(\.\./[^`\s]+\.md)`", text):
        link = next(t for t in target if t)
        if re.match(r"^[a-z]+:", link):
            continue
        path = (doc.parent / link).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: broken link {link}"

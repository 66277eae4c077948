"""Edit diffs (PROTOCOL.md "Editing"): runs along an axis, decoded in the kernel, encoded by the
viewer's TypeScript (run in Node) and by Python, checked against masks made here."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.widgets.edits import apply_edit, edit_message, encode_runs, expand_runs

JS = Path(__file__).resolve().parents[2] / "medai_lab" / "widgets" / "js"


def runs_by_hand(mask: np.ndarray, axis: int) -> list[tuple[int, int]]:
    """Maximal runs of True along ``axis`` (independent of the code under test: plain loops)."""
    nx, ny, _ = mask.shape
    moved = np.moveaxis(mask, axis, -1)
    out = []
    for idx in np.ndindex(moved.shape[:-1]):
        line = moved[idx]
        t = 0
        while t < line.size:
            if line[t]:
                start = t
                while t < line.size and line[t]:
                    t += 1
                voxel = list(idx)
                voxel.insert(axis, start)
                flat = voxel[0] + nx * (voxel[1] + ny * voxel[2])
                out.append((flat, t - start))
            else:
                t += 1
    return sorted(out)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_runs_are_the_maximal_runs_of_the_mask(axis: int) -> None:
    rng = np.random.default_rng(axis)
    mask = rng.random((9, 6, 5)) < 0.4
    flat = np.flatnonzero(mask.ravel(order="F"))
    got = sorted(map(tuple, encode_runs(rng.permutation(flat), mask.shape, axis).tolist()))
    assert got == runs_by_hand(mask, axis)
    assert np.array_equal(np.sort(expand_runs(np.array(got), mask.shape, axis)), flat)


def test_a_disc_is_a_few_runs_not_the_volume() -> None:
    shape = (512, 512, 300)
    yy, xx = np.mgrid[-20:21, -20:21]
    disc = (xx**2 + yy**2) <= 400
    i, j = np.nonzero(disc)
    flat = (i + 200) + 512 * ((j + 300) + 512 * 150)
    content, data = edit_message([(3, flat)], shape, axis=0, seq=1)
    assert content["groups"] == [[3, 41]]  # one run per row of the disc
    assert len(data) == 41 * 8


def test_apply_writes_exactly_the_runs() -> None:
    labels = np.zeros((8, 7, 6), np.uint8)
    labels[1, 1, 1] = 9
    rng = np.random.default_rng(5)
    a = rng.random(labels.shape) < 0.2
    b = (rng.random(labels.shape) < 0.2) & ~a
    content, data = edit_message(
        [(2, np.flatnonzero(a.ravel(order="F"))), (0, np.flatnonzero(b.ravel(order="F")))],
        labels.shape, axis=2,
    )  # fmt: skip
    want = labels.copy()
    want[a], want[b] = 2, 0
    assert apply_edit(labels, content, memoryview(data)) == a.sum() + b.sum()
    assert np.array_equal(labels, want)


@pytest.mark.parametrize(
    ("content", "runs"),
    [
        ({"axis": 0, "groups": [[1, 2]]}, [0, 3]),  # fewer runs than announced
        ({"axis": 0, "groups": [[1, 1]]}, [6, 3]),  # leaves the row
        ({"axis": 1, "groups": [[1, 1]]}, [0, 0]),  # empty run
        ({"axis": 0, "groups": [[1, 1]]}, [10_000, 1]),  # outside the array
        ({"axis": 0, "groups": [[300, 1]]}, [0, 1]),  # value does not fit uint8
        ({"axis": 3, "groups": [[1, 1]]}, [0, 1]),
        ({"groups": "x"}, []),
    ],
)
def test_bad_edits_write_nothing(content: dict, runs: list[int]) -> None:
    labels = np.zeros((8, 7, 6), np.uint8)
    labels[0, 0, 0] = 1
    before = labels.copy()
    first_ok = ({"axis": 0, "groups": [[4, 1]]}, [8, 2])
    # A valid group before the bad one is not written either.
    if "groups" in content and isinstance(content["groups"], list) and content["axis"] == 0:
        content = {"axis": 0, "groups": [first_ok[0]["groups"][0], *content["groups"]]}
        runs = first_ok[1] + runs
    with pytest.raises(MedaiError, match="edit"):
        apply_edit(labels, content, np.array(runs, "<u4").tobytes())
    assert np.array_equal(labels, before)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_viewers_typescript_encoder_agrees(tmp_path: Path) -> None:
    """Bundle src/edits.ts with the project's esbuild and encode random masks in Node."""
    esbuild = JS / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.fail("the widget's node_modules are missing (make install runs npm ci)")
    out = tmp_path / "edits.mjs"
    subprocess.run([str(esbuild), str(JS / "src" / "edits.ts"), "--bundle", "--format=esm",
                    f"--outfile={out}", "--log-level=error"], check=True)  # fmt: skip
    rng = np.random.default_rng(7)
    shape = (11, 9, 6)
    cases = []
    for axis in (0, 1, 2):
        mask = rng.random(shape) < 0.35
        cases.append((axis, mask, rng.permutation(np.flatnonzero(mask.ravel(order="F")))))
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import {{ encodeRuns }} from {json.dumps(str(out))};\n"
        f"const cases = {json.dumps([[a, f.tolist()] for a, _, f in cases])};\n"
        f"const out = cases.map(([a, f]) => Array.from(encodeRuns(Uint32Array.from(f), "
        f"{list(shape)}, a)));\n"
        "console.log(JSON.stringify(out));\n"
    )
    got = json.loads(subprocess.run(["node", str(script)], check=True, capture_output=True,
                                    text=True).stdout)  # fmt: skip
    for (axis, mask, _), runs in zip(cases, got, strict=True):
        pairs = sorted(zip(runs[::2], runs[1::2], strict=True))
        assert pairs == runs_by_hand(mask, axis)

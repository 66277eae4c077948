"""``templates``: the launcher's list, and copies that never overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from medai_lab.server import templates


@pytest.fixture
def template_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    for entry in templates.TEMPLATES:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"# {entry['id']}")])
        nbformat.write(nb, folder / entry["notebook"])
    monkeypatch.setenv(templates.ENV_TEMPLATES, str(folder))
    return folder


async def test_list_has_the_five_cards(jp_fetch, template_dir: Path) -> None:
    answer = await jp_fetch("medai-lab", "api", "templates")
    items = json.loads(answer.body)
    assert [t["id"] for t in items] == ["lung", "liver", "heart", "pacs_deid", "hackathon"]
    for t in items:
        assert {"id", "title", "description", "icon", "notebook"} <= set(t)
        assert t["available"] is True


async def test_copies_never_overwrite(jp_fetch, jp_root_dir: Path, template_dir: Path) -> None:
    (jp_root_dir / "work").mkdir()
    mine = jp_root_dir / "work" / "lung.ipynb"
    mine.write_text("my own notebook")
    made = []
    for _ in range(3):
        answer = await jp_fetch(
            "medai-lab", "api", "templates", method="POST",
            body=json.dumps({"id": "lung", "dir": "work"}),
        )  # fmt: skip
        assert answer.code == 201
        made.append(json.loads(answer.body)["path"])
    assert made == ["work/lung-1.ipynb", "work/lung-2.ipynb", "work/lung-3.ipynb"]
    assert mine.read_text() == "my own notebook"
    copy = nbformat.read(jp_root_dir / made[0], as_version=4)
    assert copy.cells[0].source == "# lung"


async def test_copy_into_the_root(jp_fetch, jp_root_dir: Path, template_dir: Path) -> None:
    answer = await jp_fetch(
        "medai-lab", "api", "templates", method="POST", body=json.dumps({"id": "pacs_deid"})
    )
    assert json.loads(answer.body) == {"path": "pacs_deid.ipynb"}
    assert (jp_root_dir / "pacs_deid.ipynb").is_file()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"id": "nope", "dir": ""}, 404),
        ({"dir": ""}, 400),
        ({"id": "lung", "dir": "missing"}, 404),
        ({"id": "lung", "dir": "file.txt"}, 400),
        ({"id": "lung", "dir": 3}, 400),
    ],
)
async def test_bad_copies(raw_fetch, jp_root_dir: Path, template_dir: Path, body, code) -> None:
    (jp_root_dir / "file.txt").write_text("x")
    answer = await raw_fetch("templates", method="POST", body=json.dumps(body))
    assert answer.code == code, answer.body
    assert "message" in json.loads(answer.body)


async def test_not_json(raw_fetch, template_dir: Path) -> None:
    answer = await raw_fetch("templates", method="POST", body="{")
    assert answer.code == 400


async def test_missing_notebook_is_listed_unavailable(
    jp_fetch, raw_fetch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(templates, "template_dirs", lambda: [tmp_path / "empty"])
    items = json.loads((await jp_fetch("medai-lab", "api", "templates")).body)
    assert not any(t["available"] for t in items)
    answer = await raw_fetch("templates", method="POST", body=json.dumps({"id": "lung"}))
    assert answer.code == 404

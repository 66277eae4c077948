"""Authentication and path confinement of the ``medai-lab/api`` handlers (real server)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import nibabel as nib
import numpy as np
import pytest

from medai_lab.server.paths import PathRefused, confine


@pytest.fixture
def layout(jp_root_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """A readable NIfTI outside the root, and links / folders inside it that point there."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(27, dtype=np.int16).reshape(3, 3, 3), np.eye(4)), secret)
    (jp_root_dir / "link.nii.gz").symlink_to(secret)
    (jp_root_dir / "linkdir").symlink_to(outside, target_is_directory=True)
    mixed = jp_root_dir / "mixed"
    mixed.mkdir()
    (mixed / "slice.dcm").symlink_to(secret)
    hidden = jp_root_dir / ".hidden"
    hidden.mkdir()
    nib.save(nib.load(secret), hidden / "secret.nii.gz")
    nib.save(nib.load(secret), jp_root_dir / "inside.nii.gz")
    return {"outside": outside, "secret": secret}


async def test_requests_without_a_token_are_rejected(raw_fetch, layout) -> None:
    for tail, method, body in (
        ("templates", "GET", None),
        ("templates", "POST", json.dumps({"id": "lung", "dir": ""})),
        ("gpus", "GET", None),
        ("volume?path=inside.nii.gz", "GET", None),
    ):
        answer = await raw_fetch(tail, token=False, method=method, body=body)
        assert answer.code in (401, 403), (tail, method, answer.code)
        assert b"\x89PNG" not in answer.body and b"state" not in answer.body


async def test_a_wrong_token_is_rejected(http_server_client, jp_base_url, layout) -> None:
    answer = await http_server_client.fetch(
        f"{jp_base_url}medai-lab/api/volume?path=inside.nii.gz",
        headers={"Authorization": "token not-the-token"}, raise_error=False,
    )  # fmt: skip
    assert answer.code in (401, 403)


async def test_the_same_request_with_the_token_works(raw_fetch, layout) -> None:
    answer = await raw_fetch("volume?path=inside.nii.gz")
    assert answer.code == 200, answer.body[:200]


def _abs(path: Path | str) -> str:
    return quote(str(path), safe="")


TRAVERSALS = [
    ("..%2Foutside%2Fsecret.nii.gz", {403}),
    ("../outside/secret.nii.gz", {403}),
    ("ct/../../outside/secret.nii.gz", {403}),
    ("./../outside/secret.nii.gz", {403}),
    ("inside.nii.gz/../../outside/secret.nii.gz", {403}),
    ("%2e%2e/outside/secret.nii.gz", {403}),
    ("%2E%2E%2Foutside%2Fsecret.nii.gz", {403}),
    ("%252e%252e/outside/secret.nii.gz", {403}),  # double-encoded
    ("%252e%252e%252foutside%252fsecret.nii.gz", {403}),
    ("{secret}", {403}),  # absolute
    ("%2Fetc%2Fpasswd", {403}),
    ("//etc/passwd", {403}),
    ("{shared}", {403}),  # a real CT outside the root, absolute
    ("~/secret.nii.gz", {403}),
    ("~root/.bashrc", {403}),
    ("inside.nii.gz%00", {403}),  # NUL
    ("..%2Foutside%2Fsecret.nii.gz%00.dcm", {403}),
    ("..%5Coutside%5Csecret.nii.gz", {403}),  # backslashes
    ("inside%5C..%5C..%5Coutside%5Csecret.nii.gz", {403}),
    ("C:%5Cwindows%5Csecret.nii.gz", {403}),  # drive letter
    ("link.nii.gz", {403}),  # symlink to a file outside
    ("linkdir/secret.nii.gz", {403}),  # through a symlinked folder
    ("linkdir", {403}),  # the symlinked folder itself as a DICOM folder
    ("mixed", {403}),  # a folder holding a link that points outside
    (".hidden/secret.nii.gz", {403}),  # hidden files are not served
    ("%c0%ae%c0%ae/outside/secret.nii.gz", {400, 403, 404}),  # overlong UTF-8 dots
    ("....//outside/secret.nii.gz", {403, 404}),  # a dot name inside the root
    ("does-not-exist.nii.gz", {404}),
]


@pytest.mark.parametrize(("query", "codes"), TRAVERSALS, ids=[q for q, _ in TRAVERSALS])
async def test_traversal_attempts_on_volume_are_refused(raw_fetch, layout, query, codes) -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared/data/ct_abdomen_small"
    query = query.format(secret=_abs(layout["secret"]), shared=_abs(shared / "image.nii.gz"))
    for tail in (f"volume?path={query}", f"volume?path=inside.nii.gz&labels={query}"):
        answer = await raw_fetch(tail)
        assert answer.code in codes, (tail, answer.code, answer.body[:200])
        if answer.code in (403, 404):
            assert "message" in json.loads(answer.body)


@pytest.mark.parametrize(
    "folder", ["..", "../outside", "/tmp", "{outside}", "linkdir", "~", "ct%00", "a\\..\\.."]
)
async def test_template_copies_stay_in_the_root(jp_fetch, raw_fetch, layout, folder) -> None:
    folder = folder.format(outside=layout["outside"])
    before = sorted(os.listdir(layout["outside"]))
    answer = await raw_fetch(
        "templates", method="POST", body=json.dumps({"id": "hackathon", "dir": folder})
    )
    assert answer.code in (403, 404), answer.body
    assert sorted(os.listdir(layout["outside"])) == before


def test_confine_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.nii").write_bytes(b"")
    assert confine(root, "a/f.nii") == (root / "a" / "f.nii").resolve()
    assert confine(root, "") == root.resolve()
    assert confine(root, "a/./f.nii") == (root / "a" / "f.nii").resolve()
    assert confine(root, "new.ipynb", must_exist=False).name == "new.ipynb"
    with pytest.raises(PathRefused) as info:
        confine(root, "missing.nii")
    assert info.value.status == 404
    for bad in ("..", "a/../..", "/etc", "~", "a\x00", "a\\b", "D:x", "%2e%2e/x", ".git"):
        with pytest.raises(PathRefused) as info:
            confine(root, bad, must_exist=False)
        assert info.value.status == 403, bad
    assert confine(root, ".cfg", must_exist=False, allow_hidden=True).name == ".cfg"

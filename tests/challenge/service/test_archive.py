"""Submissions on the wire: what the client packs unpacks to the same files; hostile archives
are refused with one line and write nothing outside their folder."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from medai_lab.challenge import ChallengeError
from medai_lab.challenge.service.archive import pack, unpack


def _tree(folder: Path) -> dict[str, bytes]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_a_folder_round_trips_byte_for_byte(tmp_path):
    src = tmp_path / "package"
    (src / "weights").mkdir(parents=True)
    (src / "predict.py").write_text("def predict(image, affine, context):\n    return image\n")
    (src / "weights" / "w.bin").write_bytes(bytes(range(256)) * 64)
    archive, entry = pack(src, tmp_path)
    assert entry == "." and archive.parent == tmp_path
    assert not list(tmp_path.glob("*.partial"))
    unpack(archive, tmp_path / "out", max_bytes=2**20)
    assert _tree(tmp_path / "out") == _tree(src)


def test_a_model_file_travels_with_its_sidecar(tmp_path):
    model = tmp_path / "liver.onnx"
    model.write_bytes(b"onnx bytes")
    (tmp_path / "liver.onnx.json").write_text(json.dumps({"format": "onnx"}))
    out_dir = tmp_path / "send"
    out_dir.mkdir()
    archive, entry = pack(model, out_dir)
    assert entry == "liver.onnx"
    unpack(archive, tmp_path / "out", max_bytes=2**20)
    assert sorted(_tree(tmp_path / "out")) == ["liver.onnx", "liver.onnx.json"]


def test_a_model_without_its_sidecar_is_refused_before_upload(tmp_path):
    (tmp_path / "liver.ts").write_bytes(b"x")
    with pytest.raises(ChallengeError, match=r"liver\.ts"):
        pack(tmp_path / "liver.ts", tmp_path)


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ([("../escape.txt", b"x")], "unsafe name"),
        ([("/abs/escape.txt", b"x")], "unsafe name"),
        ([("a/../../escape.txt", b"x")], "unsafe name"),
        ([("C:/escape.txt", b"x")], "unsafe name"),
        ([(_link("data"), b"/root")], "link"),
        ([("big.bin", b"\0" * 4096)], "more than"),
        pytest.param(
            [("a.txt", b"1"), ("a.txt", b"2")],
            "twice",
            marks=pytest.mark.filterwarnings("ignore:Duplicate name"),
        ),
    ],
)
def test_hostile_archives_are_refused(tmp_path, entries, needle):
    archive = _zip(tmp_path / "bad.zip", entries)
    dest = tmp_path / "box" / "out"
    dest.parent.mkdir()
    with pytest.raises(ChallengeError, match=needle):
        unpack(archive, dest, max_bytes=1024)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "bad.zip"]
    assert all(dest in p.parents for p in outside), outside


def test_not_a_zip_is_one_clear_error(tmp_path):
    (tmp_path / "up.zip").write_bytes(b"GIF89a not a zip")
    with pytest.raises(ChallengeError, match="not a zip"):
        unpack(tmp_path / "up.zip", tmp_path / "out", max_bytes=1024)

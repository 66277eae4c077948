"""``volume``: the real CT streamed as frames; decoding them gives back the image exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medai_lab.io import load_nifti, load_series
from medai_lab.server.stream import read_frames
from medai_lab.widgets.transport import browser_dtype, decode


def _levels(body: bytes) -> tuple[dict, dict[tuple[str, int], np.ndarray], list[str]]:
    """(state, {(volume, level): decoded array}, message types in order)."""
    frames = list(read_frames(body))
    state, order = frames[0][0], [m["type"] for m, _ in frames]
    decoded, current, chunks = {}, None, []
    for message, payload in frames[1:]:
        if message["type"] == "begin":
            current, chunks = message, []
        elif message["type"] == "chunk":
            chunks.append((message, payload))
        elif message["type"] == "end":
            assert current is not None and len(chunks) == current["chunks"]
            decoded[(message["volume"], message["level"])] = decode(current, chunks)
    return state, decoded, order


async def test_real_ct_series_round_trips_exactly(jp_fetch, ct_in_root: Path, ct_source) -> None:
    answer = await jp_fetch("medai-lab", "api", "volume", params={"path": "ct"})
    assert answer.code == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers.get("Transfer-Encoding") == "chunked"  # written as it goes
    state, decoded, order = _levels(answer.body)
    assert order[0] == "state" and order[1] == "begin" and order[-1] == "end"

    expected = load_series(ct_source).to_ras()
    truth = expected.array.astype(browser_dtype(expected.array))
    image = decoded[("image", 0)]
    assert image.shape == (512, 512, 20) and image.dtype == truth.dtype
    np.testing.assert_array_equal(image, truth)

    assert state["meta"]["shape"] == [512, 512, 20]
    assert state["meta"]["modality"] == "CT" and state["meta"]["volumes"] == ["image"]
    assert state["preset"] in ("liver", "auto") and len(state["window"]) == 2
    assert state["cursor"] == [256, 256, 10] and state["overlay_mode"] == "none"
    np.testing.assert_allclose(state["meta"]["affine"], expected.affine, atol=1e-5)


async def test_labels_ride_along(jp_fetch, ct_in_root: Path, ct_source: Path) -> None:
    seg = ct_source.parent / "segmentation.nii.gz"
    shutil.copyfile(seg, ct_in_root.parent / "seg.nii.gz")
    answer = await jp_fetch(
        "medai-lab", "api", "volume", params={"path": "ct", "labels": "seg.nii.gz"}
    )
    state, decoded, _order = _levels(answer.body)
    assert state["overlay_mode"] == "labels"
    assert state["meta"]["volumes"] == ["image", "labels", "labels3d"]
    truth = load_nifti(seg).to_ras().array
    np.testing.assert_array_equal(decoded[("labels", 0)], truth)
    assert {t["value"] for t in state["meta"]["labels"]} >= {1, 5}


async def test_nifti_and_single_dicom_file(jp_fetch, jp_root_dir: Path, ct_source: Path) -> None:
    shared = ct_source.parents[1] / "ct_abdomen_small" / "image.nii.gz"
    shutil.copyfile(shared, jp_root_dir / "small.nii.gz")
    _state, decoded, _ = _levels(
        (await jp_fetch("medai-lab", "api", "volume", params={"path": "small.nii.gz"})).body
    )
    np.testing.assert_array_equal(decoded[("image", 0)], load_nifti(shared).to_ras().array)
    one = sorted(ct_source.iterdir())[0]
    shutil.copyfile(one, jp_root_dir / "one.dcm")
    _state, decoded, _ = _levels(
        (await jp_fetch("medai-lab", "api", "volume", params={"path": "one.dcm"})).body
    )
    assert decoded[("image", 0)].shape[2] == 1


async def test_a_second_request_is_served_from_the_cache(jp_fetch, ct_in_root: Path) -> None:
    first = await jp_fetch("medai-lab", "api", "volume", params={"path": "ct"})
    second = await jp_fetch("medai-lab", "api", "volume", params={"path": "ct"})
    assert first.body == second.body


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [("broken.dcm", b"not a dicom file", 422), ("broken.nii.gz", b"\x1f\x8bjunk", 422),
     ("notes.txt", b"hello", 400)],
)  # fmt: skip
async def test_unreadable_files(raw_fetch, jp_root_dir: Path, name, content, code) -> None:
    (jp_root_dir / name).write_bytes(content)
    answer = await raw_fetch(f"volume?path={name}")
    assert answer.code == code
    message = json.loads(answer.body)["message"]
    assert "\n" not in message and message


async def test_missing_path_argument(raw_fetch) -> None:
    assert (await raw_fetch("volume")).code == 400


async def test_the_window_is_chosen_from_the_image(jp_fetch, jp_root_dir: Path, ct_in_root) -> None:
    """A chest opens on the lung window, the real upper-abdomen CT on soft tissue."""
    from medai_lab.datasets.phantom import make_phantom
    from medai_lab.io import save_nifti
    from medai_lab.widgets.labels import window_presets

    chest, _ = make_phantom("lung", seed=3)
    save_nifti(chest, jp_root_dir / "chest.nii.gz")
    states = {}
    for path in ("chest.nii.gz", "ct"):
        answer = await jp_fetch("medai-lab", "api", "volume", params={"path": path})
        states[path] = next(read_frames(answer.body))[0]
    assert states["chest.nii.gz"]["preset"] == "lung"
    assert states["chest.nii.gz"]["window"] == list(window_presets()["lung"])
    assert states["ct"]["preset"] == "liver"
    assert all(s["preset_auto"] is True for s in states.values())  # a user default may win

"""Several readers: each reader's labels saved beside the image with author and time, compared
(Dice, volumes) and their disagreement shown as a label map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, save_nifti
from medai_lab.widgets.readers import (
    DISAGREEMENT_NAMES,
    compare_readers,
    disagreement_map,
    load_readings,
    readers_folder,
    save_reading,
)

AFFINE = np.diag([2.0, 2.0, 2.5, 1.0])  # 10 microlitres a voxel


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return save_nifti(Volume(np.zeros((20, 20, 10), np.int16), AFFINE, {}), tmp_path / "ct.nii.gz")


def labels(box: tuple[slice, ...], value: int = 1) -> Volume:
    arr = np.zeros((20, 20, 10), np.uint8)
    arr[box] = value
    return Volume(arr, AFFINE.copy(), {})


def test_each_reader_is_a_layer_with_author_and_time(
    image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    a = save_reading(labels(np.s_[2:8, 2:8, 2:6]), image, names={1: "liver"})
    b = save_reading(labels(np.s_[4:10, 2:8, 2:6]), image, author="ben/../x")
    assert a.parent == b.parent == readers_folder(image) == image.parent / "ct.readers"
    assert a.name == "ana.nii.gz" and b.name == "ben_.._x.nii.gz"  # no path out of the folder
    save_reading(labels(np.s_[2:9, 2:8, 2:6]), image, names={1: "liver"})  # ana again: replaced
    readings = load_readings(image)
    assert [r.author for r in readings] == ["ana", "ben_.._x"]
    assert np.count_nonzero(readings[0].volume.array) == 7 * 6 * 4
    info = json.loads((a.parent / "ana.json").read_text())
    assert info["time"].endswith("+00:00") and info["labels"] == {"1": "liver"}
    assert sorted(p.name for p in a.parent.iterdir()) == [
        "ana.json", "ana.nii.gz", "ben_.._x.json", "ben_.._x.nii.gz",
    ]  # fmt: skip


def test_the_table_gives_dice_and_volumes_per_label_and_pair(image: Path) -> None:
    a = labels(np.s_[0:10, 0:10, 0:4])
    a.array[15:18, 15:18, 5:7] = 2
    save_reading(a, image, author="ana", names={1: "liver", 2: "tumour"})
    save_reading(labels(np.s_[5:15, 0:10, 0:4]), image, author="ben")
    save_reading(labels(np.s_[0:10, 0:10, 0:4]), image, author="cy")
    table = compare_readers(load_readings(image))
    liver = table[table["value"] == 1].set_index(["reader_a", "reader_b"])
    assert liver.loc[("ana", "ben"), "dice"] == pytest.approx(0.5)  # half of each box shared
    assert liver.loc[("ana", "cy"), "dice"] == pytest.approx(1.0)
    assert liver.loc[("ana", "ben"), "volume_a_ml"] == pytest.approx(400 * 0.01)
    assert liver.loc[("ana", "ben"), "difference_ml"] == pytest.approx(0.0)
    tumour = table[table["value"] == 2]
    assert set(tumour["name"]) == {"tumour"} and len(tumour) == 3
    row = tumour.set_index(["reader_a", "reader_b"]).loc[("ana", "ben")]
    assert row["dice"] == 0.0 and row["difference_ml"] == pytest.approx(-18 * 0.01)
    assert row["difference_pct"] == pytest.approx(-200.0)
    rows = compare_readers(load_readings(image), as_frame=False)
    assert isinstance(rows, list) and len(rows) == len(table)


def test_the_disagreement_map_marks_where_readers_differ(image: Path) -> None:
    save_reading(labels(np.s_[0:10, 0:10, 0:4]), image, author="ana")
    save_reading(labels(np.s_[5:15, 0:10, 0:4]), image, author="ben")
    m = disagreement_map(load_readings(image))
    assert np.array_equal(m.affine, AFFINE)
    assert np.argwhere(m.array == 1)[:, 0].min() == 5 and np.count_nonzero(m.array == 1) == 200
    assert np.count_nonzero(m.array == 2) == 400  # only ana (x 0-4) or only ben (x 10-14)
    pytest.importorskip("anywidget")
    from medai_lab.widgets import view

    w = view(image, labels=m, label_names=DISAGREEMENT_NAMES)
    assert {d["name"] for d in w.meta["labels"]} >= {"agreed", "disputed"}


def test_a_viewer_saves_its_labels_as_the_readers_layer(image: Path) -> None:
    pytest.importorskip("anywidget")
    from medai_lab.widgets import view

    w = view(image, label_names={3: "spleen"})
    mask = np.zeros((20, 20, 10), bool)
    mask[1:4, 1:4, 1:4] = True
    w.paint(mask, 3)
    path = save_reading(w, image, author="ana")
    (reading,) = load_readings(image)
    assert path.name == "ana.nii.gz" and reading.names.get(3) == "spleen"
    assert np.array_equal(reading.volume.array == 3, mask)


def test_comparisons_need_two_readers_on_one_grid(image: Path) -> None:
    save_reading(labels(np.s_[0:3, 0:3, 0:3]), image, author="ana")
    with pytest.raises(MedaiError, match="two or more readings"):
        compare_readers(load_readings(image))
    save_reading(Volume(np.zeros((20, 20, 10), np.uint8), np.diag([2.0, 2, 3, 1]), {}),
                 image, author="ben")  # fmt: skip
    with pytest.raises(MedaiError, match="elsewhere in space") as err:
        disagreement_map(load_readings(image))
    assert "\n" not in str(err.value)
    with pytest.raises(MedaiError, match="no letters or digits"):
        save_reading(labels(np.s_[0:3, 0:3, 0:3]), image, author="..")

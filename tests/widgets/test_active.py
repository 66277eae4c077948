"""Active learning: a proposal accepted headless, the corrected case appended to an MSD dataset
(atomic, no identifiers in names) and the last run fine-tuned on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medai_lab.datasets.phantom import make_phantom, write_phantom_dataset
from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti
from medai_lab.widgets.active import append_case, epochs_done, fine_tune

pytest.importorskip("anywidget")

GRID = {"shape": (32, 32, 24), "spacing": (3.0, 3.0, 5.0)}


def bright(roi: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """A user's own model: everything above 0 HU in the region."""
    return roi > 0


@pytest.fixture
def viewer():
    from medai_lab.widgets import view

    image, _ = make_phantom("liver", 7, GRID["shape"], GRID["spacing"])
    image.meta["patient_name"] = "Doe^Jane"  # must not reach any file name
    return view(image, assist=bright, label_names={1: "liver", 2: "tumour"})


def test_an_accepted_proposal_lands_exactly_where_the_model_said(viewer) -> None:
    from medai_lab.widgets.assist import accept_proposal

    image = viewer.scene.image.array
    click = np.argwhere(image > 0)[0]
    written = accept_proposal(viewer, [click.tolist()], label=2)
    assert written == np.count_nonzero(image > 0) and viewer.proposals == 1
    assert np.array_equal(viewer.labels == 2, image > 0)  # 32^3 region: the whole image
    assert viewer.edit_seq == viewer.annotations.last_seq


def test_a_corrected_case_joins_the_dataset(viewer, tmp_path: Path) -> None:
    from medai_lab.datasets.msd import find_cases
    from medai_lab.widgets.assist import accept_proposal

    data = write_phantom_dataset(tmp_path / "ds", "liver", 2, progress=False, **GRID)
    before = json.loads((data / "dataset.json").read_text())
    accept_proposal(viewer, [np.argwhere(viewer.scene.image.array > 0)[0].tolist()], label=1)
    case = append_case(data, viewer)
    assert case == "liver_002"
    info = json.loads((data / "dataset.json").read_text())
    assert info["training"][:2] == before["training"] and info["numTraining"] == 3
    assert [c["case"] for c in find_cases(data)] == ["liver_000", "liver_001", "liver_002"]
    saved = load_nifti(data / "labelsTr" / "liver_002.nii.gz")
    assert np.array_equal(saved.array, viewer.labels)
    assert np.array_equal(saved.affine, viewer.scene.image.affine)
    with open(data / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["case"] == "liver_002" and rows[-1]["split"] == "training"
    assert rows[-1]["labels_found"].startswith("liver=")
    names = [p.name for p in data.rglob("*")]
    assert not any("Doe" in n or "partial" in n for n in names)
    assert append_case(data, viewer) == "liver_003"  # again: a new case, nothing replaced


def test_a_new_dataset_is_made_and_bad_input_leaves_it_unchanged(tmp_path: Path) -> None:
    image, labels = make_phantom("liver", 1, GRID["shape"], GRID["spacing"])
    data = tmp_path / "corrections"
    assert append_case(data, image, labels, task="liver", names={1: "liver"}) == "liver_000"
    info = json.loads((data / "dataset.json").read_text())
    assert info["labels"] == {"0": "background", "1": "liver"} and info["numTraining"] == 1
    snapshot = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    small = Volume(labels.array[:10], labels.affine, {})
    with pytest.raises(MedaiError, match="not on the image grid") as err:
        append_case(data, image, small)
    assert "\n" not in str(err.value)
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == snapshot
    with pytest.raises(MedaiError, match="no run to fine-tune"):
        fine_tune("liver", data, preset="smoke", out_dir=tmp_path / "runs")


def test_fine_tuning_continues_the_last_run_on_the_new_data(tmp_path: Path) -> None:
    pytest.importorskip("pytorch_lightning")
    import torch

    from medai_lab.tasks import train

    runs = tmp_path / "runs"
    first = train("liver", "smoke", None, ["trainer.max_epochs=1"], out_dir=runs, progress=False)
    data = tmp_path / "ds"
    image, labels = make_phantom("liver", 5, (48, 48, 32), (3.0, 3.0, 5.0))
    append_case(data, image, labels, task="liver", names={1: "liver", 2: "tumour"})
    for i in (0, 1):  # the run's own phantoms too, so a validation split exists
        append_case(data, load_nifti(sorted((first.data_dir / "imagesTr").iterdir())[i]),
                    load_nifti(sorted((first.data_dir / "labelsTr").iterdir())[i]))  # fmt: skip
    before = torch.load(str(first.last_checkpoint), weights_only=False)
    tuned = fine_tune("liver", data, preset="smoke", out_dir=runs, progress=False)
    after = torch.load(str(tuned.last_checkpoint), weights_only=False)
    assert Path(tuned.data_dir) == data
    assert epochs_done(after) == epochs_done(before) + 1 == 2
    assert after["global_step"] > before["global_step"]  # it trained on, from those weights
    assert "dice_mean" in tuned.metrics
    # the tuned run folder is an assist model as it is (its checkpoint, contract and labels)
    from medai_lab.widgets.assist_model import load_assist

    model = load_assist(runs / "liver")
    assert model.contract.labels == ((1, "liver"), (2, "tumour"))
    mask = model(image.array[:40, :40, :24], np.array([[20, 20, 12]]), spacing=image.spacing)
    assert mask.shape == (40, 40, 24) and mask.dtype == bool

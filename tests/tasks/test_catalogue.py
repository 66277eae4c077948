"""The task catalogue: a new task is one YAML file, and everything (CLI, training, phantoms,
challenge) picks it up with no code change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medai_lab import catalogue
from medai_lab.catalogue import CatalogueError

SMOKE_SHAPE = (48, 48, 32)
SMOKE_SPACING = (3.0, 3.0, 5.0)

# A whole new task: copied from nothing but the documented YAML keys.
SPLEEN = """\
name: spleen
modality: CT
in_channels: 1
labels: {1: spleen}
intensity: {mode: ct_window, a_min: -150.0, a_max: 250.0}
foreground_threshold: -500.0
spacing: [1.5, 1.5, 2.5]
patch_size: [96, 96, 64]
keep_largest: [1]
phantom:
  scene: liver
  labels: {1: spleen}
"""


@pytest.fixture
def user_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "my-tasks"
    folder.mkdir()
    (folder / "spleen.yaml").write_text(SPLEEN, encoding="utf-8")
    monkeypatch.setenv(catalogue.ENV, str(folder))
    return folder


def test_builtin_tasks_come_from_their_yaml_files() -> None:
    import yaml

    files = sorted(catalogue.BUILTIN_DIR.glob("*.yaml"))
    assert catalogue.names() == tuple(p.stem for p in files)
    for path in files:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        info = catalogue.get(path.stem)
        assert info.label_map() == {int(k): v for k, v in raw["labels"].items()}
        assert info.modality == raw["modality"]
        assert info.phantom is not None and info.phantom.scene == raw["phantom"]["scene"]


def test_user_folder_adds_a_task(user_tasks: Path) -> None:
    from medai_lab.cli import build_parser
    from medai_lab.tasks.config import compose, options

    assert "spleen" in catalogue.names() and "spleen" in options("task")
    assert catalogue.get("spleen").label_map(background=True) == {0: "background", 1: "spleen"}
    assert compose("spleen", "smoke")["task"]["labels"] == {1: "spleen"}
    args = build_parser().parse_args(["phantom", "out", "--task", "spleen"])
    assert args.task == "spleen"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: other\nmodality: CT\nlabels: {1: a}\nintensity: {}\nspacing: []\npatch_size: []",
         "must equal the file name"),
        ("name: bad\nmodality: CT\nlabels: {0: a}\nintensity: {}\nspacing: []\npatch_size: []",
         "values 1-255"),
        ("name: bad\nmodality: CT\nlabels: {1: a}\nspacing: []\npatch_size: []",
         "missing intensity"),
        ("name: bad\nmodality: CT\nlabels: {1: a}\nintensity: {}\nspacing: []\npatch_size: []\n"
         "phantom: {scene: liver, labels: {2: spleen}}", "draw every label"),
        ("- a list", "must hold a mapping"),
    ],
)  # fmt: skip
def test_a_bad_task_file_gives_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv(catalogue.ENV, str(tmp_path))
    assert "bad" in catalogue.names()  # listed without being parsed
    with pytest.raises(CatalogueError, match=message) as info:
        catalogue.get("bad")
    assert "\n" not in str(info.value) and "bad.yaml" in str(info.value)


def test_unknown_task_names_the_choices() -> None:
    with pytest.raises(CatalogueError, match="unknown task 'kidney'; choose one of: heart, liver"):
        catalogue.get("kidney")


def test_a_recipe_for_a_structure_the_scene_does_not_draw_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medai_lab.datasets import make_phantom
    from medai_lab.errors import MedaiError

    text = SPLEEN.replace("name: spleen", "name: kidney").replace("scene: liver", "scene: lung")
    (tmp_path / "kidney.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv(catalogue.ENV, str(tmp_path))
    with pytest.raises(MedaiError, match="the lung scene draws no 'spleen'"):
        make_phantom("kidney", 0, SMOKE_SHAPE, SMOKE_SPACING)


def test_spleen_from_yaml_alone_trains_and_is_scored_in_a_challenge(
    user_tasks: Path, tmp_path: Path, store: str
) -> None:
    """Phantoms, smoke training, export, a challenge, a scored submission: no code change."""
    pytest.importorskip("torch")
    from medai_lab.challenge import Challenge
    from medai_lab.datasets import make_phantom, write_phantom_dataset
    from medai_lab.tasks import train

    image, label = make_phantom("spleen", 0, SMOKE_SHAPE, SMOKE_SPACING)
    assert set(np.unique(label.array)) == {0, 1}
    spleen_hu = np.median(image.array[label.array == 1])
    assert 20 < spleen_hu < 80  # soft tissue, as the scene paints the spleen

    def phantoms(name: str, cases: int, seed: int) -> Path:
        return write_phantom_dataset(
            tmp_path / name, "spleen", cases, seed=seed, shape=SMOKE_SHAPE,
            spacing=SMOKE_SPACING, progress=False,
        )  # fmt: skip

    data = phantoms("train", 2, 0)
    result = train(
        "spleen", "smoke", data, ["trainer.max_epochs=1"], out_dir=tmp_path / "runs",
        progress=False, track=False, export=("torchscript",),
    )  # fmt: skip
    assert set(result.module.labels.values()) == {"spleen"}
    assert 0.0 <= result.metrics["dice/spleen"] <= 1.0
    model = Path(result.extra["exports"]["torchscript"])

    ch = Challenge.create_from_data(
        tmp_path / "challenge", "spleen", test=phantoms("hidden", 2, 100), time_per_case_s=120,
        startup_s=300, memory_mb=6144,
    )  # fmt: skip
    assert ch.spec.labels == {1: "spleen"}
    ch.submit(model, team="owls", phase="test")
    (res,) = ch.evaluate(tracking_uri=store)
    assert res["status"] == "scored", res.get("notes")
    assert res["score"]["n_cases"] == 2 and res["score"]["n_failed"] == 0

"""Config composition: groups, presets that only override, overrides, resolved values."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from medai_lab import catalogue
from medai_lab.errors import MedaiError
from medai_lab.tasks.config import (
    CONFIG_DIR,
    GROUPS,
    PRESETS,
    ConfigError,
    TrainConfig,
    compose,
    flatten,
    options,
    parse_overrides,
)


def test_import_is_light():
    code = (
        "import sys, medai_lab.tasks, medai_lab.tasks.lung, medai_lab.tasks.runner, "
        "medai_lab.datasets.msd\n"
        "heavy = [m for m in ('torch', 'monai', 'pytorch_lightning') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_task_preset_and_model_composes():
    for task in catalogue.names():
        for preset in (*PRESETS, None):
            for model in options("model"):
                cfg = compose(task, preset, [f"model={model}"])
                assert cfg["task"]["name"] == task
                assert cfg["model"]["name"] == model
                assert cfg["choices"]["model"] == model
                assert set(GROUPS) <= set(cfg)


@pytest.mark.parametrize(
    ("task", "modality", "msd", "intensity"),
    [
        ("lung", "CT", "Task06_Lung", {"mode": "ct_window", "a_min": -1350.0, "a_max": 150.0}),
        ("liver", "CT", "Task03_Liver", {"mode": "ct_window", "a_min": -150.0, "a_max": 250.0}),
        ("heart", "MR", "Task02_Heart", {"mode": "zscore"}),
    ],
)
def test_resolved_task_values(task, modality, msd, intensity):
    cfg = compose(task, "cpu")
    assert cfg["task"]["modality"] == modality
    assert cfg["task"]["msd_task"] == msd
    assert cfg["task"]["intensity"] == intensity
    assert (
        cfg["task"]["labels"]
        == {
            "lung": {1: "lung", 2: "nodule"},
            "liver": {1: "liver", 2: "tumour"},
            "heart": {1: "heart", 2: "left_atrium"},
        }[task]
    )
    # cpu preset values land over the defaults; untouched defaults stay.
    assert cfg["trainer"]["accelerator"] == "cpu"
    assert cfg["model"]["num_res_units"] == 0
    assert cfg["model"]["channels"] == [16, 32, 64, 128, 256]
    assert cfg["preset"] == "cpu"


def test_window_centre_and_width():
    for task, (level, width) in {"lung": (-600, 1500), "liver": (50, 400)}.items():
        i = compose(task, None)["task"]["intensity"]
        assert (i["a_min"] + i["a_max"]) / 2 == level
        assert i["a_max"] - i["a_min"] == width


def _preset_body(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / "preset" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_only_override_what_differs(preset):
    """Every value a preset sets exists below it and differs there: no copied settings."""
    body = _preset_body(preset)
    parent = body.get("extends")
    for task in catalogue.names():
        for model in options("model"):
            below = compose(task, parent, [f"model={model}"])
            flat_below = flatten(below)
            plain = {
                k: v for k, v in body.items() if k not in ("extends", "defaults") and "/" not in k
            }
            blocks = [plain, body.get(f"model/{model}", {}), body.get(f"task/{task}", {})]
            for block in blocks:
                for key, value in flatten(block).items():
                    assert key in flat_below, f"{preset}: {key} does not exist"
                    assert flat_below[key] != value, f"{preset}: {key}={value!r} copies the default"


def test_group_switch_and_conditional_blocks():
    cfg = compose("liver", "smoke", ["model=segresnet", "optim=sgd"])
    assert cfg["model"]["name"] == "segresnet"
    assert cfg["model"]["init_filters"] == 8  # smoke's model/segresnet block
    assert "channels" not in cfg["model"]  # smoke's model/unet block not applied
    assert cfg["optim"]["name"] == "sgd"
    assert cfg["optim"]["scheduler"]["name"] == "poly"


def test_dotted_overrides_both_spellings_and_yaml_values():
    cfg = compose(
        "lung",
        "smoke",
        [
            "trainer.max_epochs=5",
            "--data.batch_size",
            "3",
            "--optim.lr=1e-3",
            "task.patch_size=[64, 64, 32]",
            "data.cache_dir=null",
            "trainer.deterministic=false",
            "data.frames=[0, 2]",
        ],
    )
    assert cfg.data.frames == [0, 2] and cfg.trainer.max_epochs == 5
    assert cfg["trainer"]["max_epochs"] == 5
    assert cfg["data"]["batch_size"] == 3
    assert cfg["optim"]["lr"] == pytest.approx(1e-3) and isinstance(cfg["optim"]["lr"], float)
    assert cfg["task"]["patch_size"] == [64, 64, 32]
    assert cfg["data"]["cache_dir"] is None
    assert cfg["trainer"]["deterministic"] is False


def test_section_override_merges():
    cfg = compose("lung", "smoke", ["optim.scheduler={name: poly}"])
    assert cfg["optim"]["scheduler"]["name"] == "poly"
    assert "warmup_epochs" in cfg["optim"]["scheduler"]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["trainer.max_epoch=3"], "'trainer.max_epoch' (did you mean 'trainer.max_epochs'?)"),
        (["--nosuch.key", "1"], "'nosuch.key'"),
        (["data.phantom.casez=3"], "'data.phantom.casez'"),
        (["trainer.max_epochs.x=1"], "'trainer.max_epochs.x'"),
        (["model=resnet"], "unknown model option 'resnet'"),
        (["trainer.checkpoint=3"], "is a section"),
        (["trainer.max_epochs"], "key=value"),
        (["--trainer.max_epochs"], "has no value"),
    ],
)
def test_bad_overrides_give_one_clear_error(overrides, needle):
    with pytest.raises(ConfigError) as info:
        compose("lung", "cpu", overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, MedaiError)


def test_unknown_task_and_preset():
    with pytest.raises(ConfigError, match="unknown task 'kidney'"):
        compose("kidney")
    with pytest.raises(ConfigError, match="unknown preset 'tpu'"):
        compose("lung", "tpu")


def test_parse_overrides_and_flatten():
    assert parse_overrides(["a.b=1", "--c", "x", "--d=[1, 2]", "e=1e-4", "f="]) == [
        ("a.b", 1),
        ("c", "x"),
        ("d", [1, 2]),
        ("e", 1e-4),
        ("f", ""),
    ]
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1], "e": {}}


def test_compose_returns_frozen_typed_views_and_plain_dicts():
    a = compose("heart", "smoke")
    assert isinstance(a, TrainConfig)
    assert a.trainer.max_epochs == 2 and a.task.patch_size == (32, 32, 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.trainer.max_epochs = 5  # type: ignore[misc]
    plain = a.as_dict()
    plain["task"]["patch_size"].append(99)
    b = compose("heart", "smoke")
    assert b["task"]["patch_size"] == [32, 32, 32]  # key reads give the plain YAML value
    assert yaml.safe_load(yaml.safe_dump(b.as_dict())) == b.as_dict()  # loggable as params
    assert TrainConfig.from_dict(b.as_dict()).as_dict() == b.as_dict()  # checkpoint round trip
    assert b.as_dict() == plain | {"task": {**plain["task"], "patch_size": [32, 32, 32]}}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["trainer.max_epochs=abc"], "trainer.max_epochs must be a whole number >= 1, got 'abc'"),
        (["seed=-1"], "seed must be a whole number >= 0"),
        (["data.cache=ram"], "data.cache must be none | memory | disk, got 'ram'"),
        (["task.patch_size=[64, 64]"], "task.patch_size must be a list of 3"),
        (["optim.lr=fast"], "optim.lr must be a number"),
        (["trainer.deterministic=maybe"], "trainer.deterministic must be true or false"),
        (["eval.overlap=1.5"], "eval.overlap must be a number from 0 to 0.99"),
        (["trainer.num_nodes=two"], "trainer.num_nodes must be a whole number or auto"),
        (["data.frames=1.5"], "data.frames must be all, a frame index"),
    ],
)
def test_bad_values_give_one_clear_error(overrides, needle):
    with pytest.raises(ConfigError) as info:
        compose("lung", "cpu", overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_in_a_group_file_is_named(tmp_path, monkeypatch):
    body = yaml.safe_load((CONFIG_DIR / "task" / "lung.yaml").read_text())
    body.update(name="kidney", colour="red")
    (tmp_path / "kidney.yaml").write_text(yaml.safe_dump(body))
    monkeypatch.setenv(catalogue.ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown config key 'task\.colour'"):
        compose("kidney", "smoke")

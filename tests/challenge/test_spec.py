"""The challenge YAML: defaults, relative paths, and one clear error per mistake."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from challenge_helpers import spec_dict

from medai_lab.challenge import Limits, SpecError, load_spec, parse_spec


def test_yaml_with_relative_paths_and_defaults(tmp_path: Path, phases: dict[str, Path]) -> None:
    text = f"""
name: liver-hack
task: liver
labels: [1]
phases:
  validation:
    data: {phases["validation"]}
  test:
    hidden: true
    images: data/imagesTr
    labels: data/labelsTr
    submissions_per_day: 2
"""
    (tmp_path / "data").symlink_to(phases["test"])
    (tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.title == "liver-hack" and spec.labels == {1: "liver"}
    assert [k.metric for k in spec.ranking] == ["dice", "hd95"]
    assert spec.ranking[1].order == "asc" and spec.limits == Limits()
    val, test = spec.phase("validation"), spec.phase("test")
    assert spec.phase() is val and not val.hidden and "predictions" in val.formats
    assert test.hidden and "predictions" not in test.formats and test.submissions_per_day == 2
    assert test.images == (phases["test"] / "imagesTr").resolve()
    assert val.submissions_per_day == Limits().submissions_per_day
    again = parse_spec(spec.to_dict())
    assert again == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(nmae="x"), "unknown key nmae; did you mean 'name'"),
        (lambda d: d.update(task="brain"), "task must be one of heart, liver, lung, got .brain."),
        (lambda d: d.update(name="Liver Hack"), "name must be"),
        (lambda d: d["limits"].update(time_per_case=3), "did you mean 'time_per_case_s'"),
        (lambda d: d["limits"].update(memory_mb=0), "limits.memory_mb must be a whole number"),
        (lambda d: d["limits"].update(gpu="yes"), "limits.gpu must be true or false"),
        (lambda d: d["metrics"].update(ranking=["dise"]), "unknown metric 'dise'; did you mean"),
        (lambda d: d["metrics"].update(ranking=["dice", "dice"]), "listed twice"),
        (lambda d: d.update(labels={0: "background"}), "values are 1-255"),
        (lambda d: d.update(phases={}), "at least one phase"),
        (lambda d: d["phases"]["test"].update(formats=["predictions"]), "hidden phase cannot"),
        (lambda d: d["phases"]["test"].update(formats=["tflite"]), "unknown format 'tflite'"),
        (lambda d: d["phases"]["test"].update(data="/no/such/dir"), "images folder not found"),
        (lambda d: d["phases"]["test"].update(images="x"), "either data"),
    ],
)
def test_mistakes_give_one_clear_error(phases: dict[str, Path], change: Any, message: str) -> None:
    raw = copy.deepcopy(spec_dict(phases))
    change(raw)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("'", "'")) as info:
        parse_spec(raw)
    assert "\n" not in str(info.value)


def test_images_without_labels_and_bad_yaml(tmp_path: Path, phases: dict[str, Path]) -> None:
    images, labels = tmp_path / "img", tmp_path / "lab"
    images.mkdir()
    labels.mkdir()
    src = phases["test"] / "imagesTr"
    for p in src.iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    raw = spec_dict(phases)
    raw["phases"]["test"] = {"hidden": True, "images": str(images), "labels": str(labels)}
    with pytest.raises(SpecError, match="3 image\\(s\\) have no label map"):
        parse_spec(raw)
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")


def test_spec_file_written_by_create_reloads(make_challenge: Any) -> None:
    ch = make_challenge()
    data = yaml.safe_load((ch.root / "challenge.yaml").read_text())
    assert data["phases"]["test"]["hidden"] is True
    assert load_spec(ch.root / "challenge.yaml") == ch.spec


def test_imports_stay_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, medai_lab.challenge, medai_lab.challenge.command, medai_lab.cli; "
        "medai_lab.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

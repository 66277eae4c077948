import json

import pytest

from medai_lab.demo import run_demo
from medai_lab.errors import MedaiError


def test_demo_runs_end_to_end_and_all_checks_pass(tmp_path, dcm2niix, capsys):
    assert run_demo(tmp_path / "demo", task="heart", seed=3) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["checks"] and all(summary["checks"].values())
    assert "dcm2niix agrees" in summary["checks"]
    assert set(summary["median_HU"]) == {"heart", "left_atrium"}
    assert (tmp_path / "demo" / "overview.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "nifti" / "heart_003.nii.gz").is_file()
    # A second run replaces its own earlier output.
    assert run_demo(tmp_path / "demo", task="heart", seed=3) == 0


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(MedaiError, match="not made by the demo"):
        run_demo(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"

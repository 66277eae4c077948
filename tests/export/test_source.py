"""``medai-lab export RUN_OR_CKPT`` and ``medai-lab predict`` on a real (smoke) training run."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medai_lab.cli import main

pytest.importorskip("pytorch_lightning")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    from medai_lab.tasks import train

    out = tmp_path_factory.mktemp("runs")
    return train("heart", "smoke", None, ["trainer.max_epochs=2"], out_dir=out, progress=False)


def test_run_folder_resolves_to_the_best_checkpoint(run) -> None:
    from medai_lab.export import resolve_checkpoint

    assert resolve_checkpoint(run.run_dir) == run.best_checkpoint
    assert resolve_checkpoint(run.run_dir / "checkpoints") == run.best_checkpoint
    assert resolve_checkpoint(run.last_checkpoint) == run.last_checkpoint


def test_export_cli_onnx_and_bundle(run, tmp_path: Path, capsys) -> None:
    from medai_lab.inference import Predictor

    onnx = tmp_path / "heart.onnx"
    assert main(["export", str(run.run_dir), "--format", "onnx", "--out", str(onnx)]) == 0
    assert "verified against the network" in capsys.readouterr().out
    sidecar = json.loads(onnx.with_name("heart.onnx.json").read_text())
    assert sidecar["format"] == "onnx" and sidecar["task"] == "heart"
    assert sidecar["inference"]["keep_largest"] == [1, 2]
    image = sorted((run.data_dir / "imagesTr").glob("*.nii.gz"))[0]
    mine = Predictor.load(onnx).predict(image)
    ref = Predictor.load(run.best_checkpoint).predict(image)
    assert np.mean(mine.array != ref.array) < 1e-3

    bundle = tmp_path / "bundle"
    assert (
        main(["export", str(run.best_checkpoint), "--format", "bundle", "--out", str(bundle)]) == 0
    )
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    outputs = meta["network_data_format"]["outputs"]["pred"]
    assert outputs["num_channels"] == 3 and (bundle / "models" / "model.ts").is_file()


def test_export_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.ts")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medai-lab: error: no such run folder") and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "m.ts")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.ts").exists()


def test_predict_cli_keeps_grids_and_sets_bad_images_aside(run, tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    images.mkdir()
    sources = sorted((run.data_dir / "imagesTr").glob("*.nii.gz"))
    for src in sources:
        (images / src.name).write_bytes(src.read_bytes())
    (images / "broken.nii.gz").write_bytes(b"not a nifti file")
    out = tmp_path / "pred"
    code = main(["predict", str(run.best_checkpoint), str(images), "--out", str(out), "--quiet"])
    assert code == 1  # one image failed; the others were written
    text = capsys.readouterr().out
    assert f"wrote {len(sources)} label map(s)" in text and "failed broken.nii.gz" in text
    assert sorted(p.name for p in out.iterdir()) == sorted(s.name for s in sources)
    for src in sources:
        pred, img = nib.load(out / src.name), nib.load(src)
        assert pred.shape == img.shape and np.allclose(pred.affine, img.affine)
        assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}
    assert (images / "broken.nii.gz").read_bytes() == b"not a nifti file"  # input untouched


def test_predict_takes_a_run_folder_or_run_id_as_export_does(run, tmp_path: Path, capsys) -> None:
    """``medai-lab predict runs/heart ...``: the run's best checkpoint, as ``export`` finds it."""
    import mlflow

    from medai_lab.inference import InferenceError, Predictor

    images = tmp_path / "images"
    images.mkdir()
    (src,) = sorted((run.data_dir / "imagesTr").glob("*.nii.gz"))[:1]
    (images / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "pred"
    assert main(["predict", str(run.run_dir), str(images), "--out", str(out), "--quiet"]) == 0
    want = Predictor.load(run.best_checkpoint).predict(src).array
    assert np.array_equal(np.asarray(nib.load(out / src.name).dataobj), want)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    client.set_tag(run_id, "medai_lab.best_checkpoint", str(run.best_checkpoint))
    by_id = Predictor.load(run_id, tracking_uri=uri).predict(src).array
    assert np.array_equal(by_id, want)
    with pytest.raises(InferenceError, match="no such run folder, checkpoint or MLflow run"):
        Predictor.load(tmp_path / "nope")

"""Smoke fits of every task, resume equivalence, CSV input, outputs and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medai_lab.tasks import train
from medai_lab.tasks.command import main
from medai_lab.tasks.runner import TrainingError, runtime_trainer
from medai_lab.tasks.schema import TrainConfig

pl = pytest.importorskip("pytorch_lightning")
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("task", ["lung", "liver", "heart"])
def test_smoke_fit_validate_and_export(task, tmp_path):
    result = train(task, "smoke", out_dir=tmp_path, progress=False, export=("torchscript", "onnx"))
    labels = result.module.labels
    val_cases = result.extra["val_cases"]
    df = result.case_metrics
    assert len(df) == len(val_cases) * len(labels)
    assert set(df["case"]) == set(val_cases)
    assert set(df["label_name"]) == set(labels.values())
    assert df["dice"].between(0, 1).all() and df["nsd"].between(0, 1).all()
    assert set(result.extra["train_cases"]).isdisjoint(val_cases)
    # Phantoms were written for the task and cached under out_dir.
    assert result.data_dir.parent == tmp_path / task / "data"
    assert (result.data_dir / "dataset.json").is_file()
    ckpts = tmp_path / task / "checkpoints"
    assert result.last_checkpoint == ckpts / "last.ckpt" and result.last_checkpoint.is_file()
    assert result.best_checkpoint.parent == ckpts and result.best_checkpoint.is_file()
    assert 0 <= result.metrics["dice_mean"] <= 1
    for name in labels.values():
        assert f"dice/{name}" in result.metrics and f"nsd/{name}" in result.metrics
    assert result.config.trainer.precision == "32-true"  # resolved at run time (typed view)
    assert result.module.config.trainer.precision == "32-true"  # the module saw the same
    assert result.extra["val_cases"] == result.val_cases and result.exports  # older dict form
    # the checkpoint holds the plain config: it rebuilds the same typed view
    saved = result.module.hparams["config"]
    assert isinstance(saved, dict) and TrainConfig.from_dict(saved).as_dict() == saved
    best, worst = result.module.val_examples["best"], result.module.val_examples["worst"]
    assert best["dice"] >= worst["dice"]
    assert best["image"].shape == best["label"].shape == best["prediction"].shape
    # The exports segment a raw image exactly as the checkpoint does, on the image's own grid.
    from medai_lab.inference import Predictor

    image = sorted((result.data_dir / "imagesTr").glob("*.nii.gz"))[0]
    eager = Predictor.load(result.best_checkpoint).predict(image)
    exports = result.extra["exports"]
    assert set(exports) == {"torchscript", "onnx"}
    for path in exports.values():
        exported = Predictor.load(path).predict(image)
        # float rounding may flip an argmax where two logits tie (the net is barely trained)
        assert exported.shape == eager.shape
        assert np.mean(exported.array != eager.array) < 1e-3
        np.testing.assert_allclose(exported.affine, eager.affine)


def test_resume_reproduces_an_uninterrupted_run(phantoms, tmp_path):
    """2 epochs straight == 1 epoch, interrupted, then resumed to 2: same weights, same Dice."""
    data = phantoms("liver", 3)
    # Randomness that a resume must not replay: flips, two train volumes, dropout.
    overrides = ["data.augment.flip_prob=0.5", "model.dropout=0.2", "data.val_fraction=0.34"]

    class StopAfterFirstEpoch(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            trainer.should_stop = True

    straight = train("liver", "smoke", data, overrides, out_dir=tmp_path / "a", progress=False)
    first = train(
        "liver",
        "smoke",
        data,
        overrides,
        out_dir=tmp_path / "b",
        progress=False,
        callbacks=[StopAfterFirstEpoch()],
    )
    interrupted = torch.load(first.last_checkpoint, weights_only=True)
    assert interrupted["epoch"] == 0
    resumed = train(
        "liver", "smoke", data, overrides, out_dir=tmp_path / "b", progress=False, resume=True
    )
    a = torch.load(straight.last_checkpoint, weights_only=True)
    b = torch.load(resumed.last_checkpoint, weights_only=True)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (1, 2)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert resumed.metrics == pytest.approx(straight.metrics, nan_ok=True)
    # The comparison is sensitive: the weights after one epoch differ from those after two.
    c = interrupted["state_dict"]
    assert any(not torch.equal(c[k], v) for k, v in a["state_dict"].items())


def test_resume_without_checkpoint(phantoms, tmp_path):
    with pytest.raises(TrainingError, match=r"nothing to resume: .*last\.ckpt does not exist"):
        train("heart", "smoke", phantoms("heart"), out_dir=tmp_path, resume=True, progress=False)


def test_csv_manifest_input_and_segresnet(phantoms, tmp_path):
    src = phantoms("heart", 2)
    manifest = tmp_path / "cohort.csv"
    lines = ["case,image,label"] + [
        f"pt{i},{src}/imagesTr/heart_00{i}.nii.gz,{src}/labelsTr/heart_00{i}.nii.gz"
        for i in range(2)
    ]
    manifest.write_text("\n".join(lines) + "\n")
    result = train(
        "heart",
        "smoke",
        manifest,
        # Also the other loader and the disk cache (PersistentDataset).
        ["model=segresnet", "trainer.max_epochs=1", "data.loader=thread", "data.cache=disk"],
        out_dir=tmp_path / "runs",
        progress=False,
    )
    assert set(result.case_metrics["case"]) <= {"pt0", "pt1"}
    assert len(result.case_metrics) == 2
    assert type(result.module.net).__name__ == "SegResNet"
    assert any((tmp_path / "runs" / "heart" / "cache").rglob("*.pt"))


def test_swinunetr_builds_and_runs():
    from medai_lab.tasks.config import ConfigError, compose
    from medai_lab.tasks.module import SegmentationModule

    module = SegmentationModule(compose("lung", "smoke", ["model=swinunetr"]))  # 64^3 patches
    assert type(module.net).__name__ == "SwinUNETR"
    with torch.no_grad():
        out = module.eval()(torch.randn(1, 1, 64, 64, 64))
    assert out.shape == (1, max(module.labels) + 1, 64, 64, 64)
    with pytest.raises(ConfigError, match=r"at least 64"):  # a 1-voxel bottleneck cannot norm
        SegmentationModule(
            compose("lung", "smoke", ["model=swinunetr", "task.patch_size=[32,32,32]"])
        )
    with pytest.raises(ConfigError, match=r"multiples of 32"):
        SegmentationModule(
            compose("lung", "smoke", ["model=swinunetr", "task.patch_size=[48,48,48]"])
        )


def test_checkpoint_reloads_and_overlay_draws(phantoms, tmp_path):
    from matplotlib.figure import Figure

    from medai_lab.tasks import SegmentationModule, overlay_figure

    result = train(
        "lung",
        "smoke",
        phantoms("lung"),
        ["trainer.max_epochs=1", "data.cache=memory"],  # CacheDataset
        out_dir=tmp_path,
        progress=False,
    )
    module = SegmentationModule.load_from_checkpoint(result.best_checkpoint)
    assert module.config["task"]["name"] == "lung"
    x = torch.zeros(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert module(x).shape == (1, 3, 32, 32, 32)
    fig = overlay_figure(result.module.val_examples["worst"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "lung_" in fig._suptitle.get_text()


def test_runtime_trainer_settings():
    from dataclasses import replace

    from medai_lab.tasks.config import compose

    base = replace(
        compose("lung", None).trainer,
        accelerator="auto",
        devices="auto",
        num_nodes=1,
        strategy="auto",
        precision="auto",
        benchmark=True,
        deterministic=False,
    )
    cpu = runtime_trainer(base, env={}, cuda=False, bf16=False)
    assert cpu["precision"] == "32-true" and cpu["benchmark"] is False
    gpu = runtime_trainer(base, env={}, cuda=True, bf16=True)
    assert gpu["precision"] == "bf16-mixed" and gpu["benchmark"] is True
    assert runtime_trainer(base, env={}, cuda=True, bf16=False)["precision"] == "16-mixed"
    cpu_only = runtime_trainer(replace(base, accelerator="cpu"), env={}, cuda=True, bf16=True)
    assert cpu_only["precision"] == "32-true"
    ddp = replace(base, strategy="ddp", num_nodes="auto")
    torchrun = runtime_trainer(
        ddp, env={"LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "8"}, cuda=True, bf16=True
    )
    assert (torchrun["devices"], torchrun["num_nodes"], torchrun["strategy"]) == (4, 2, "ddp")
    slurm = runtime_trainer(
        ddp, env={"SLURM_NNODES": "3", "SLURM_NTASKS_PER_NODE": "2(x3)"}, cuda=True, bf16=True
    )
    assert (slurm["devices"], slurm["num_nodes"]) == (2, 3)
    with pytest.warns(UserWarning, match="no CUDA"):
        alone = runtime_trainer(ddp, env={}, cuda=False, bf16=False)
    assert (alone["strategy"], alone["devices"], alone["num_nodes"]) == ("auto", 1, 1)


def test_out_of_memory_becomes_one_line():
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.runtime import oom_as_error

    cfg = compose("liver", "gpu")
    with pytest.raises(TrainingError) as info, oom_as_error(cfg):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    msg = str(info.value)
    assert "patch 96x96x64, batch 2" in msg and "smaller task.patch_size" in msg
    assert "\n" not in msg


def test_command_line(tmp_path, capsys):
    from medai_lab.tasks import lung

    assert main(["liver", "--preset", "smoke", "--data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"medai-lab: error: data path does not exist: {tmp_path / 'nope'}"
    assert lung.main(["--preset", "smoke", "--trainer.max_epoch", "1"]) == 2
    assert "did you mean 'trainer.max_epochs'" in capsys.readouterr().err
    assert (
        lung.main(
            ["--preset", "smoke", "--out", str(tmp_path), "--no-progress", "trainer.max_epochs=1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("lung: mean Dice") and "best checkpoint" in out
    assert not math.isnan(float(out.split()[3]))


def test_fourd_images_train_with_their_frames_as_channels(tmp_path):
    """Chosen frames become the channels, and the model's contract makes prediction on a
    4-D image pick the same frames."""
    from helpers import write_fourd_liver

    from medai_lab.inference import Predictor
    from medai_lab.io import load_nifti
    from medai_lab.tasks.config import compose
    from medai_lab.tasks.prepare import adopt_dataset_channels

    times = [[0.0, 35.0, 70.0], [0.0, 40.0, 70.0], [35.0, 70.0, 105.0]]
    data = write_fourd_liver(tmp_path / "msd", times, (48, 48, 32), (3.0, 3.0, 5.0))
    result = train(
        "liver", "smoke", data, ["trainer.max_epochs=1", "data.frames=[0, 2]"],
        out_dir=tmp_path / "runs", progress=False, export=(),
    )  # fmt: skip
    assert result.config.task.in_channels == 2
    first = next(m for m in result.module.net.modules() if isinstance(m, torch.nn.Conv3d))
    assert first.in_channels == 2
    assert len(result.case_metrics) > 0
    predictor = Predictor.from_checkpoint(result.best_checkpoint, device="cpu")
    assert predictor.contract.frames == (0, 2)
    image = data / "imagesTr" / "liver_000.nii.gz"
    assert load_nifti(image).array.ndim == 4
    labels = predictor.predict(image)
    assert labels.array.shape == (48, 48, 32)
    # every frame: 3 channels; one named frame per case: 1; the choice lands in data.frames
    every = adopt_dataset_channels(compose("liver", "smoke"), data)
    assert every.task.in_channels == 3 and every.data.frames is None
    one = adopt_dataset_channels(compose("liver", "smoke", ["data.frames=trigger_time=70"]), data)
    assert one.task.in_channels == 1 and one.data.frames == "trigger_time=70"

"""A MONAI bundle export runs under MONAI's own bundle tools and equals the eager network."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from testsupport import missing_component

from medai_lab.export import ExportError, load_exported
from medai_lab.export.bundle import BundleResult, export_bundle

LABELS = {"1": "liver", "2": "tumour"}
CONTRACT = {
    "task": "liver",
    "in_channels": 1,
    "patch_size": [32, 32, 32],
    "spacing": [3.0, 3.0, 5.0],
    "orientation": "RAS",
    "intensity": {"mode": "ct_window", "a_min": -150, "a_max": 250},
    "foreground_threshold": -500.0,
    "labels": LABELS,
    "model": "unet",
    # as the reference below runs it (the contract's own defaults are 0.25 / gaussian)
    "inference": {"sw_batch_size": 4, "overlap": 0.5, "mode": "constant", "keep_largest": []},
}


def _net() -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(
        spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8, 16), strides=(2, 2),
        num_res_units=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return _net()


@pytest.fixture(scope="module")
def bundle(net: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> BundleResult:
    out = tmp_path_factory.mktemp("export") / "liver_ct_segmentation"
    return export_bundle(net, CONTRACT, out, version="1.2.0")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medai_lab.datasets import write_phantom_dataset

    # LPS-like affine (-3, -3, 5) and air at -1024 HU: reorientation and the body crop both act,
    # so the bundle's inversion back to the image grid is really exercised.
    root = tmp_path_factory.mktemp("phantom") / "liver"
    shape, spacing = (48, 48, 32), (3.0, 3.0, 5.0)
    return write_phantom_dataset(root, "liver", 1, shape=shape, spacing=spacing, progress=False)


def _files(bundle: BundleResult) -> dict[str, str]:
    configs = bundle.path / "configs"
    return {
        "config_file": str(configs / "inference.json"),
        "meta_file": str(configs / "metadata.json"),
        "bundle_root": str(bundle.path),
    }


def _eager_labels(net: torch.nn.Module, image: Path) -> np.ndarray:
    """The contract's preprocessing written out by hand, the eager network, back to the grid."""
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference
    from monai.transforms import (
        Compose,
        CropForegroundd,
        EnsureChannelFirstd,
        Invertd,
        LoadImaged,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )

    pre = Compose(
        [
            LoadImaged("image", image_only=True),
            EnsureChannelFirstd("image"),
            Orientationd("image", axcodes="RAS", labels=None),
            Spacingd("image", pixdim=CONTRACT["spacing"], mode="bilinear", dtype=np.float32),
            CropForegroundd(
                "image", "image", select_fn=lambda x: x > -500.0, margin=2, allow_smaller=True
            ),
            ScaleIntensityRanged("image", a_min=-150, a_max=250, b_min=0, b_max=1, clip=True),
        ]
    )
    data = pre({"image": str(image)})
    x = data["image"]
    with torch.no_grad():
        logits = sliding_window_inference(x.as_tensor()[None], [32, 32, 32], 4, net, overlap=0.5)
    labels = logits[0].argmax(0, keepdim=True).float()
    data["pred"] = MetaTensor(labels, affine=x.affine, applied_operations=x.applied_operations)
    data["pred"].meta.update({k: v for k, v in x.meta.items() if k != "affine"})
    back = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(data)["pred"]
    return np.rint(back.cpu().numpy()[0]).astype(np.uint8)


def test_monai_runs_the_bundle_like_the_eager_network(
    bundle: BundleResult, net: torch.nn.Module, images: Path, tmp_path: Path
) -> None:
    import nibabel as nib
    from monai.bundle import ConfigParser, ConfigWorkflow, run

    if importlib.util.find_spec("ignite") is None:
        missing_component("pytorch-ignite (MONAI's SupervisedEvaluator runs bundles)")
    files = _files(bundle)
    parser = ConfigParser()
    parser.read_config(files["config_file"])
    parser.read_meta(files["meta_file"])
    assert (
        parser["inferer"]["roi_size"]
        == parser["_meta_#network_data_format#inputs#image#spatial_shape"]
    )
    workflow = ConfigWorkflow(workflow_type="inference", logging_file=False, **files)
    workflow.initialize()
    assert workflow.check_properties() == []  # everything MONAI's inference workflows require

    out = tmp_path / "segmentations"
    run(
        run_id="run",
        logging_file=False,
        dataset_dir=str(images / "imagesTr"),
        output_dir=str(out),
        **files,
    )

    (image,) = sorted((images / "imagesTr").glob("*.nii.gz"))
    assert sorted(p.name for p in out.iterdir()) == [image.name.replace(".nii.gz", "_seg.nii.gz")]
    seg, src = nib.load(next(out.iterdir())), nib.load(image)
    assert seg.shape == src.shape and np.allclose(seg.affine, src.affine, atol=1e-4)
    got = np.asanyarray(seg.dataobj)
    assert set(np.unique(got)) <= {0, 1, 2}
    want = _eager_labels(net, image)
    assert len(np.unique(want)) > 1  # a constant label map would make the comparison vacuous
    # TorchScript (frozen, fused) and eager logits may differ by float rounding (~1e-7); a voxel
    # whose two best logits are that close could take the other label on another CPU or BLAS,
    # so 99.9 % equality is asked (here every voxel agrees).
    assert (got == want).mean() >= 0.999


def test_monai_verifies_and_loads_the_network(bundle: BundleResult, net: torch.nn.Module) -> None:
    from monai.bundle import load, verify_net_in_out

    files = _files(bundle)
    verify_net_in_out(net_id="network_def", device="cpu", **files)
    wrong = {"_meta_#network_data_format#outputs#pred#num_channels": 4}
    with pytest.raises(ValueError, match="output channel number"):  # the check is not vacuous
        verify_net_in_out(net_id="network_def", device="cpu", **files, **wrong)

    module, meta, extra = load(
        bundle.path.name, bundle_dir=bundle.path.parent, load_ts_module=True, device="cpu",
        config_files=["inference.json"],
    )  # fmt: skip
    assert meta == json.loads(Path(files["meta_file"]).read_text())
    assert json.loads(extra["inference.json"]) == json.loads(Path(files["config_file"]).read_text())
    x = torch.randn(1, 1, 48, 32, 40)  # not the patch size it was traced with
    run, sidecar = load_exported(bundle.model)  # our own loader reads it too
    with torch.no_grad():
        assert torch.allclose(module(x), net(x), rtol=1e-3, atol=1e-4)
        assert torch.allclose(run(x), net(x), rtol=1e-3, atol=1e-4)
    assert sidecar["spacing"] == CONTRACT["spacing"] and bundle.max_abs_diff < 1e-4


def test_existing_folder_is_refused_and_failures_leave_nothing(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError, match="not empty"):
        export_bundle(_net(), CONTRACT, taken)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert (taken / "notes.txt").read_text(encoding="utf-8") == "mine"

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("out of luck")

    with pytest.raises(ExportError, match="out of luck"):
        export_bundle(Broken(), CONTRACT, tmp_path / "broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no bundle, no temp folder

    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is as good as none
    assert (export_bundle(_net(), CONTRACT, empty).path / "configs" / "inference.json").is_file()


def test_docs_and_metadata_carry_the_contract(bundle: BundleResult) -> None:
    import monai

    meta = json.loads((bundle.path / "configs" / "metadata.json").read_text(encoding="utf-8"))
    fmt = meta["network_data_format"]
    assert fmt["outputs"]["pred"]["channel_def"] == {"0": "background", **LABELS}
    assert fmt["outputs"]["pred"]["num_channels"] == 3
    image = fmt["inputs"]["image"]
    assert (image["format"], image["modality"], image["spatial_shape"]) == (
        "hounsfield",
        "CT",
        [32] * 3,
    )
    assert meta["version"] == "1.2.0" and meta["medai_lab_contract"]["spacing"] == [3.0, 3.0, 5.0]
    assert meta["monai_version"] == monai.__version__
    readme = (bundle.path / "docs" / "README.md").read_text(encoding="utf-8")
    for text in ("| 1 | liver |", "| 2 | tumour |", "3 x 3 x 5 mm", "[-150, 250] HU", "> -500.0"):
        assert text in readme
    assert "python -m monai.bundle run --config_file configs/inference.json" in readme


def test_mr_contract_and_validation_postprocessing(tmp_path: Path) -> None:
    from monai.bundle import ConfigParser

    contract = {
        **CONTRACT,
        "intensity": {"mode": "zscore"},
        "foreground_threshold": None,
        "inference": {"sw_batch_size": 2, "overlap": 0.25, "mode": "gaussian", "keep_largest": [1]},
    }
    result = export_bundle(_net(), contract, tmp_path / "mr")
    parser = ConfigParser()
    parser.read_config(str(result.path / "configs" / "inference.json"))
    inferer = parser.get_parsed_content("inferer")
    assert (inferer.overlap, inferer.mode, inferer.sw_batch_size) == (0.25, "gaussian", 2)
    names = [type(t).__name__ for t in parser.get_parsed_content("postprocessing").transforms]
    assert names[:3] == ["AsDiscreted", "KeepLargestConnectedComponentd", "Invertd"]
    pre = [type(t).__name__ for t in parser.get_parsed_content("preprocessing").transforms]
    assert "NormalizeIntensityd" in pre and "ScaleIntensityRanged" not in pre
    meta = json.loads((result.path / "configs" / "metadata.json").read_text(encoding="utf-8"))
    image = meta["network_data_format"]["inputs"]["image"]
    assert (image["format"], image["modality"], image["value_range"]) == ("magnitude", "MR", [])


def _blocked_imports(declared: dict[str, str]) -> list[str]:
    """Import names of MONAI's optional packages that the bundle did not declare.

    Allowed: what MONAI itself and every declared package need (their own requirements, all
    the way down), and ``fire``, which the ``python -m monai.bundle`` command line needs.
    """
    import importlib.metadata as md

    from packaging.requirements import Requirement

    def requirements(dist: str) -> list[Requirement]:
        try:
            return [Requirement(r) for r in md.requires(dist) or []]
        except md.PackageNotFoundError:
            return []

    def canon(name: str) -> str:
        return name.lower().replace("_", "-")

    optional = {canon(r.name) for r in requirements("monai") if "extra" in str(r.marker)}
    allowed: set[str] = set()
    todo = ["monai", "fire", *declared]
    while todo:
        dist = canon(todo.pop())
        if dist not in allowed:
            allowed.add(dist)
            todo += [r.name for r in requirements(dist) if "extra" not in str(r.marker)]
    modules = md.packages_distributions()
    return sorted(
        module
        for module, dists in modules.items()
        if any(canon(d) in optional for d in dists)
        and not any(canon(d) in allowed for d in dists)
        and not module.startswith("_")
    )


def test_the_bundle_runs_with_only_the_packages_its_metadata_declares(
    images: Path, tmp_path: Path
) -> None:
    """``python -m monai.bundle run`` as the README shows it, in a fresh process in which every
    optional MONAI package the bundle's metadata does not declare cannot be imported: what a
    user who installs just the declared packages has. Validation's post-processing
    (largest connected component, which needs scikit-image) is part of the bundle."""
    import subprocess
    import sys

    import nibabel as nib

    contract = {**CONTRACT, "inference": {"keep_largest": [1, 2], "overlap": 0.25}}
    bundle = export_bundle(_net(), contract, tmp_path / "liver_bundle")
    meta = json.loads((bundle.path / "configs" / "metadata.json").read_text(encoding="utf-8"))
    declared = meta["required_packages_version"]
    assert {"nibabel", "pytorch-ignite", "scikit-image"} <= set(declared)
    blocked = _blocked_imports(declared)
    assert "skimage" not in blocked and "pandas" in blocked  # the check is not vacuous
    guard = (
        "import importlib.abc, runpy, sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Undeclared(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Undeclared())\n"
        "sys.argv[0] = 'monai.bundle'\n"
        "runpy.run_module('monai.bundle', run_name='__main__', alter_sys=True)\n"
    )
    out = tmp_path / "seg"
    args = ["run", "--config_file", str(bundle.path / "configs" / "inference.json"),
            "--bundle_root", str(bundle.path), "--dataset_dir", str(images / "imagesTr"),
            "--output_dir", str(out)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", guard, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (image,) = sorted((images / "imagesTr").glob("*.nii.gz"))
    seg = nib.load(out / image.name.replace(".nii.gz", "_seg.nii.gz"))
    assert seg.shape == nib.load(image).shape
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
    readme = (bundle.path / "docs" / "README.md").read_text(encoding="utf-8")
    assert "scikit-image" in readme


def test_a_4d_models_bundle_keeps_the_frames_it_was_trained_on(tmp_path: Path) -> None:
    from helpers import write_fourd_liver
    from monai.bundle import ConfigParser
    from monai.networks.nets import UNet

    data = write_fourd_liver(tmp_path / "msd", [[0.0, 35.0, 70.0]], (48, 48, 32), (3.0, 3.0, 5.0))
    net = UNet(3, 2, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    result = export_bundle(net, {**CONTRACT, "in_channels": 2, "frames": [0, 2]}, tmp_path / "b")
    parser = ConfigParser()
    parser.read_config(str(result.path / "configs" / "inference.json"))
    image = parser.get_parsed_content("preprocessing")(
        {"image": str(data / "imagesTr" / "liver_000.nii.gz")}
    )["image"]
    assert image.shape[0] == 2
    readme = (result.path / "docs" / "README.md").read_text(encoding="utf-8")
    assert "only frames [0, 2]" in readme

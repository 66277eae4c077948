"""Export a segmentation network as a MONAI bundle (TorchScript model, configs, docs).

A bundle is a folder that MONAI's own tools understand without MedAI Lab::

    <out>/configs/metadata.json    what goes in and out (MONAI metadata schema)
    <out>/configs/inference.json   load, RAS, resample, crop, intensity, sliding window,
                                   argmax, back to the image's grid, save (SupervisedEvaluator)
    <out>/models/model.ts          traced TorchScript with metadata.json and inference.json inside
    <out>/models/model.ts.json     MedAI Lab sidecar, so ``load_exported`` works on model.ts
    <out>/docs/README.md           the model, its preprocessing contract and how to run it

The folder is built next to ``out`` and renamed into place: it is complete or absent.
Running the bundle needs MONAI and the packages its ``configs/metadata.json`` lists under
``required_packages_version`` (the MONAI bundle specification's field): pytorch-ignite (its
engines), nibabel, and scikit-image when validation's largest-component post-processing is
part of it; the ``python -m monai.bundle`` command line also needs ``fire``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata as _pkg
from pathlib import Path
from typing import Any

from medai_lab import __version__
from medai_lab.atomic import atomic_dir
from medai_lab.contract import ModelContract
from medai_lab.errors import MedaiError
from medai_lab.export.exporters import ExportError, as_contract, export_model

__all__ = ["SCHEMA", "BundleResult", "export_bundle"]

SCHEMA = (
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/"
    "meta_schema_20240725.json"
)
# intensity mode -> (metadata input format, modality, value range the network sees)
_INPUT_KIND = {"ct_window": ("hounsfield", "CT", [0.0, 1.0]), "zscore": ("magnitude", "MR", [])}
_IGNITE_MIN = "0.4.11"  # monai.utils.enums.IgniteInfo.OPT_IMPORT_VERSION
_SKIMAGE_MIN = "0.14.2"  # monai.transforms.utils: optional_import("skimage.measure", "0.14.2")


@dataclass(frozen=True)
class BundleResult:
    """The bundle folder, its TorchScript model and the export's distance from the network."""

    path: Path
    model: Path
    max_abs_diff: float


def export_bundle(
    network: Any,
    contract: ModelContract | dict[str, Any],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    version: str = "0.1.0",
    description: str | None = None,
    sw_batch_size: int | None = None,
    overlap: float | None = None,
) -> BundleResult:
    """Write ``network`` and its preprocessing ``contract`` as a MONAI bundle folder ``out``.

    Parameters
    ----------
    network
        The eager ``torch.nn.Module`` (traced by :func:`export_model` and checked against it).
    contract
        A :class:`~medai_lab.contract.ModelContract` (or its JSON form); its ``inference``
        (``overlap``, ``mode``, ``keep_largest``...) makes the bundle post-process like validation.
    out
        Bundle folder; must not exist or be empty.
    name, version, description
        Bundle metadata; ``name`` defaults to the folder's name.
    sw_batch_size, overlap
        Sliding-window settings; default from the contract's ``inference``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"bundle folder exists and is not empty: {out}")
    typed = as_contract(contract)
    inf = typed.inference
    sw = int(sw_batch_size if sw_batch_size is not None else inf.sw_batch_size)
    ov = float(overlap if overlap is not None else inf.overlap)
    contract = typed.to_dict()  # the JSON form, as the sidecar and metadata carry it
    labels = _labels(contract)
    config = _inference(contract, sw, ov, inf.mode, contract["inference"])
    meta = _metadata(contract, labels, name or out.name, version, description)
    meta["required_packages_version"] = _required_packages(config)
    with atomic_dir(out) as tmp:
        try:
            result = export_model(network, typed, tmp / "models" / "model.ts", "torchscript")
        except MedaiError:
            raise
        except Exception as exc:  # the eager check runs the network before any tracing
            raise ExportError(f"bundle export failed: {type(exc).__name__}: {exc}") from exc
        _embed(result.model, meta, config)
        _write(tmp / "configs" / "metadata.json", json.dumps(meta, indent=4) + "\n")
        _write(tmp / "configs" / "inference.json", json.dumps(config, indent=4) + "\n")
        _write(tmp / "docs" / "README.md", _readme(meta, contract, config))
    return BundleResult(out, out / "models" / "model.ts", result.max_abs_diff)


def _labels(contract: dict[str, Any]) -> dict[int, str]:
    """Output channel -> name, background 0 included (channels = largest label + 1)."""
    for key in ("patch_size", "spacing", "intensity", "labels"):
        if key not in contract:
            raise ExportError(f"the contract needs {key!r} for a bundle")
    mode = contract["intensity"].get("mode")
    if mode not in _INPUT_KIND:
        raise ExportError(f"intensity mode must be one of {', '.join(_INPUT_KIND)}, got {mode!r}")
    named = {int(k): str(v) for k, v in contract["labels"].items() if int(k) != 0}
    if not named:
        raise ExportError("the contract lists no foreground label")
    return {
        i: "background" if i == 0 else named.get(i, f"label {i}") for i in range(max(named) + 1)
    }


def _version(package: str, fallback: str | None = None) -> str | None:
    try:
        return _pkg.version(package)
    except _pkg.PackageNotFoundError:
        return fallback


def _tensor(
    fmt: str,
    num_channels: int,
    patch: list[int],
    value_range: list[float],
    channel_def: dict[str, str],
    modality: str = "n/a",  # the specification's default
) -> dict[str, Any]:
    """A tensor format specifier of the MONAI bundle specification (patches, float32)."""
    return {
        "type": "image",
        "format": fmt,
        "modality": modality,
        "num_channels": num_channels,
        "spatial_shape": patch,
        "dtype": "float32",
        "value_range": value_range,
        "is_patch_data": True,
        "channel_def": channel_def,
    }


def _metadata(
    contract: dict[str, Any],
    labels: dict[int, str],
    name: str,
    version: str,
    description: str | None,
) -> dict[str, Any]:
    """``configs/metadata.json``; the full contract travels under ``medai_lab_contract``."""
    fmt, modality, value_range = _INPUT_KIND[contract["intensity"]["mode"]]
    patch = [int(p) for p in contract["patch_size"]]
    channels_in = int(contract.get("in_channels", 1))
    task = str(contract.get("task", name))
    spacing = " x ".join(f"{float(s):g}" for s in contract["spacing"])
    text = description or (
        f"{task} segmentation from {modality} ({', '.join(list(labels.values())[1:])}), "
        f"resampled to {spacing} mm in RAS; exported by MedAI Lab {__version__}."
    )
    channels = {str(i): v for i, v in labels.items()}
    return {
        "schema": SCHEMA,
        "version": version,
        "changelog": {version: f"exported by MedAI Lab {__version__}"},
        "monai_version": _version("monai"),
        # MONAI's own template drops local tags such as "+cpu"
        "pytorch_version": str(_version("torch")).split("+")[0],
        "numpy_version": _version("numpy"),
        "required_packages_version": {},  # from the inference config: _required_packages
        "name": name,
        "task": f"{task} segmentation",
        "description": text,
        "authors": "MedAI Lab",
        "copyright": "Copyright (c) MedAI Lab",
        "data_type": "nibabel",
        "image_classes": f"{channels_in} channel {modality} image",
        "label_classes": ", ".join(f"{i} is {v}" for i, v in labels.items()),
        "pred_classes": f"{len(labels)} channels of logits, one per label",
        "intended_use": "Research only; not for diagnostic use",
        "network_data_format": {
            "inputs": {
                "image": _tensor(fmt, channels_in, patch, value_range, {"0": "image"}, modality)
            },
            "outputs": {"pred": _tensor("segmentation", len(labels), patch, [], channels)},
        },
        "medai_lab_contract": contract,
    }


def _required_packages(config: dict[str, Any]) -> dict[str, str | None]:
    """What ``configs/inference.json`` imports beyond MONAI, torch and numpy, with versions.

    SupervisedEvaluator runs on pytorch-ignite, LoadImaged/SaveImaged on nibabel, and
    KeepLargestConnectedComponentd labels components with scikit-image (on the CPU).
    """
    post = {t["_target_"] for t in config["postprocessing"]["transforms"]}
    packages = {
        "nibabel": _version("nibabel"),
        "pytorch-ignite": _version("pytorch-ignite", _IGNITE_MIN),
    }
    if "KeepLargestConnectedComponentd" in post:
        packages["scikit-image"] = _version("scikit-image", _SKIMAGE_MIN)
    return packages


def _c(target: str, **args: Any) -> dict[str, Any]:
    """One config component: MONAI's ConfigParser instantiates ``target(**args)``."""
    return {"_target_": target, **args}


def _intensity(spec: dict[str, Any]) -> dict[str, Any]:
    """The intensity transform of medai_lab.datasets.transforms, as a config component."""
    if spec["mode"] == "ct_window":
        window = {"a_min": float(spec["a_min"]), "a_max": float(spec["a_max"])}
        return _c("ScaleIntensityRanged", keys="image", **window, b_min=0.0, b_max=1.0, clip=True)
    return _c("NormalizeIntensityd", keys="image", nonzero=True, channel_wise=True)


def _inference(
    contract: dict[str, Any], sw: int, overlap: float, mode: str, inf: dict[str, Any]
) -> dict[str, Any]:
    """``configs/inference.json``: the training preprocessing, inverted after argmax."""
    crop = _c("CropForegroundd", keys="image", source_key="image", margin=2, allow_smaller=True)
    threshold = contract.get("foreground_threshold")
    if threshold is not None:
        # x > t as a picklable callable (worker processes), without MedAI Lab installed
        crop["select_fn"] = f"$functools.partial(operator.lt, {float(threshold)!r})"
    post = [_c("AsDiscreted", keys="pred", argmax=True)]
    if inf.get("keep_largest"):  # as validation did: on the model grid, before inversion
        # independent=False: one component for the union of the labels, as in validation
        keep = {"applied_labels": [int(v) for v in inf["keep_largest"]], "independent": False}
        post.append(_c("KeepLargestConnectedComponentd", keys="pred", **keep))
    pixdim, roi = [float(s) for s in contract["spacing"]], [int(p) for p in contract["patch_size"]]
    # fmt: off
    return {
        "imports": ["$import functools", "$import glob", "$import operator"],
        "bundle_root": ".",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "dataset_dir": "$@bundle_root + '/data'",
        "output_dir": "$@bundle_root + '/eval'",
        "datalist": "$sorted(glob.glob(@dataset_dir + '/*.nii.gz')"
                    " + glob.glob(@dataset_dir + '/*.nii'))",
        # frozen TorchScript keeps its weights as graph constants: .to() would not move them
        "network_def": "$torch.jit.load(@bundle_root + '/models/model.ts', map_location=@device)",
        "network": "$@network_def.eval()",
        "preprocessing": _c("Compose", transforms=[
            # NIfTI only (the datalist): no probing of every reader MONAI knows
            _c("LoadImaged", keys="image", image_only=True, reader="NibabelReader"),
            _c("EnsureChannelFirstd", keys="image"),
            *_frames(contract.get("frames")),
            # axis names from the image's own space (labels=None), as in training
            _c("Orientationd", keys="image", axcodes="RAS", labels=None),
            _c("Spacingd", keys="image", pixdim=pixdim, mode="bilinear", dtype="$numpy.float32"),
            crop,
            _intensity(contract["intensity"]),
            _c("EnsureTyped", keys="image", dtype="$torch.float32"),
        ]),
        "dataset": _c("Dataset", data="$[{'image': i} for i in @datalist]",
                      transform="@preprocessing"),
        "dataloader": _c("DataLoader", dataset="@dataset", batch_size=1, shuffle=False,
                         num_workers=0),
        "inferer": _c("SlidingWindowInferer", roi_size=roi, sw_batch_size=sw, overlap=overlap,
                      mode=mode),
        "postprocessing": _c("Compose", transforms=[
            *post,
            _c("Invertd", keys="pred", transform="@preprocessing", orig_keys="image",
               nearest_interp=True, to_tensor=True),
            _c("SaveImaged", keys="pred", output_dir="@output_dir", output_postfix="seg",
               output_ext=".nii.gz", output_dtype="$numpy.uint8", resample=False,
               separate_folder=False, print_log=False),
        ]),
        "handlers": [_c("StatsHandler", iteration_log=False)],
        "evaluator": _c("SupervisedEvaluator", device="@device", val_data_loader="@dataloader",
                        network="@network", inferer="@inferer", postprocessing="@postprocessing",
                        val_handlers="@handlers", amp=False),
        "initialize": [],  # nothing to set up: no seeds or global flags changed in the caller
        "run": ["$@evaluator.run()"],
    }
    # fmt: on


def _frames(frames: Any) -> list[dict[str, Any]]:
    """4-D inputs trained on chosen frame indices: keep those channels (MONAI's Lambdad).

    A choice by axis value (``trigger_time=400``) differs per image and needs the image's
    sidecar: the bundle's README says which frame to give it instead.
    """
    if not isinstance(frames, list):
        return []
    return [_c("Lambdad", keys="image", func=f"$lambda x: x[{[int(i) for i in frames]}]")]


def _embed(model: Path, meta: dict[str, Any], config: dict[str, Any]) -> None:
    """Store the configs inside model.ts, as MONAI's ``ckpt_export`` does.

    ``monai.bundle.load(..., load_ts_module=True)`` then returns the metadata with the module.
    Re-saving a loaded TorchScript module copies its graph and constants unchanged.
    """
    import torch
    from monai.data import save_net_with_metadata

    module = torch.jit.load(str(model), map_location="cpu")
    extra = {"inference.json": json.dumps(config).encode()}
    save_net_with_metadata(
        module, str(model), include_config_vals=False, meta_values=meta, more_extra_files=extra
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")  # inside the temp folder: atomic as a whole


def _readme(meta: dict[str, Any], contract: dict[str, Any], config: dict[str, Any]) -> str:
    """``docs/README.md``: what the model is, what it expects, how to run and check it."""
    spec, pred = contract["intensity"], meta["network_data_format"]["outputs"]["pred"]
    if spec["mode"] == "ct_window":
        window = f"[{spec['a_min']:g}, {spec['a_max']:g}]"
        intensity = f"CT window {window} HU scaled to [0, 1], clipped"
    else:
        intensity = "z-score over non-zero voxels, per channel"
    threshold = contract.get("foreground_threshold")
    crop_above = 0 if threshold is None else threshold  # CropForegroundd's default: x > 0
    spacing = " x ".join(f"{float(s):g}" for s in contract["spacing"])
    rows = "\n".join(f"| {i} | {v} |" for i, v in pred["channel_def"].items())
    sw = config["inferer"]
    post = [t["_target_"] for t in config["postprocessing"]["transforms"]]
    keep = "KeepLargestConnectedComponentd" in post
    largest = "; only the largest connected component of the labels is kept" if keep else ""
    frames = contract.get("frames")
    frames_step = (
        f"; of a 4-D image only frames {frames} (the channels the model was trained on)"
        if isinstance(frames, list)
        else f"; a 4-D image must hold only the frame with {frames} (the model's training choice)"
        if isinstance(frames, str)
        else ""
    )
    patch = " x ".join(str(p) for p in sw["roi_size"])
    required = meta["required_packages_version"]
    needs = ", ".join(required)
    pins = " ".join(f'"{k}=={v}"' if v else k for k, v in required.items())
    return f"""# {meta["name"]}

{meta["description"]}

Version {meta["version"]}; MONAI {meta["monai_version"]}, PyTorch {meta["pytorch_version"]}.
{meta["intended_use"]}.

## Labels

| value | label |
| --- | --- |
{rows}

## Preprocessing contract

1. Load the image (NIfTI), channel first{frames_step}.
2. Reorient to {contract.get("orientation", "RAS")}.
3. Resample (bilinear) to a voxel spacing of {spacing} mm.
4. Crop to the body: bounding box of intensity > {crop_above}, margin 2 voxels.
5. Intensity: {intensity}.
6. Sliding-window inference on {patch} patches, {sw["sw_batch_size"]} per batch,
   overlap {sw["overlap"]:g}, {sw["mode"]} blending.
7. Argmax over the {pred["num_channels"]} output channels{largest}.
8. The label map goes back through the inverse of steps 2-4 (nearest neighbour), so it lies
   on the input image's own grid.

`configs/inference.json` does all of this; `models/model.ts` is the traced network
(input `(N, {contract.get("in_channels", 1)}, D, H, W)` float32, output one logit per label).

## Run

Needs MONAI {meta["monai_version"]} with {needs} (`configs/metadata.json`,
`required_packages_version`) and `fire` for the command line:
`pip install "monai=={meta["monai_version"]}" fire {pins}`. From this folder, for every
`*.nii.gz` / `*.nii` in the dataset folder, `<name>_seg.nii.gz` is written to the output folder:

```
python -m monai.bundle run --config_file configs/inference.json \\
    --dataset_dir /path/to/images --output_dir /path/to/segmentations
```

From another folder, give the config file's full path and `--bundle_root /path/to/bundle`.
Check the network against the metadata:

```
python -m monai.bundle verify_net_in_out network_def \\
    --meta_file configs/metadata.json --config_file configs/inference.json
```
"""

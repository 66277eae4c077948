"""Segmentation datasets on disk (MSD layout, image/label folders, CSV manifests) for training.

Finding and checking cases needs only nibabel; :class:`SegmentationDataModule` and the torch
datasets/samplers are built on first use (``torch``, ``monai`` and ``pytorch_lightning`` are
imported inside the functions that need them), so this module stays cheap to import.

Reproducibility: the train/val split is a seeded permutation of the cases sorted by id; the
training order and the augmentation of every draw depend only on ``(seed, epoch, item)``
(:class:`~medai_lab.datasets.transforms.EpochSampler`,
:class:`~medai_lab.datasets.transforms.SeededAugmentDataset`), so a resumed run equals an
uninterrupted one, with any number of loader workers.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab.cpushare import cpu_count, dataloader_workers
from medai_lab.datasets.download import download_msd as download_msd  # its old home
from medai_lab.errors import MedaiError

Case = dict[str, str]  # {"case": id, "image": path, "label": path}
_NIFTI = (".nii.gz", ".nii")


class DatasetError(MedaiError):
    """A training dataset cannot be used as given."""


class DataPathError(DatasetError):
    """The data path does not exist or holds no dataset layout we know."""


class EmptyDatasetError(DatasetError):
    """The dataset lists no training cases (or too few to train and validate)."""


class LabelShapeError(DatasetError):
    """A label volume does not have its image's grid size."""


def case_id(path: str | os.PathLike[str]) -> str:
    """``.../lung_001_0000.nii.gz`` -> ``lung_001`` (nnU-Net channel suffix dropped)."""
    name = Path(path).name
    for ext in _NIFTI:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    if len(name) > 5 and name[-5] == "_" and name[-4:].isdigit():
        name = name[:-5]
    return name


def find_cases(data: str | os.PathLike[str]) -> list[Case]:
    """Training cases of an MSD folder, an imagesTr/labelsTr folder or a CSV manifest.

    Parameters
    ----------
    data
        A folder with ``dataset.json`` (its ``training`` list, paths relative to the folder); a
        folder with ``imagesTr/`` and ``labelsTr/`` (paired by file name); or a ``.csv`` file with
        columns ``image`` and ``label`` (and optionally ``case``), paths relative to the CSV.

    Returns
    -------
    list of dict
        ``{"case", "image", "label"}`` with absolute paths, sorted by case id.
    """
    root = Path(data).expanduser()
    if not root.exists():
        raise DataPathError(f"data path does not exist: {root}")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DataPathError(f"data file must be a CSV manifest (image,label columns): {root}")
        cases = _manifest_cases(root)
    elif (root / "dataset.json").is_file():
        cases = _msd_cases(root)
    elif (root / "imagesTr").is_dir():
        cases = _folder_cases(root)
    else:
        raise DataPathError(
            f"no dataset in {root}: expected dataset.json, imagesTr/ + labelsTr/, or a CSV manifest"
        )
    if not cases:
        raise EmptyDatasetError(f"dataset at {root} has no training cases")
    ids = [c["case"] for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DatasetError(f"dataset at {root} lists case id(s) more than once: {dupes[:5]}")
    return sorted(cases, key=lambda c: c["case"])


def dataset_labels(data: str | os.PathLike[str]) -> dict[int, str] | None:
    """Foreground labels (value -> name) from ``dataset.json``, or None when there is none."""
    path = Path(data) / "dataset.json"
    if not path.is_file():
        return None
    labels = _read_json(path).get("labels")
    if not isinstance(labels, Mapping):
        return None
    try:
        out = {int(k): str(v) for k, v in labels.items() if int(k) != 0}
    except ValueError:  # nnU-Net v2 style {"name": value}
        out = {int(v): str(k) for k, v in labels.items() if int(v) != 0}
    return dict(sorted(out.items())) or None


def check_cases(cases: Sequence[Case]) -> None:
    """Fail early, naming the case: files missing, not NIfTI, or label grid != image grid.

    Only headers are read (nibabel), so this costs milliseconds per case.
    """
    import nibabel as nib

    if not cases:
        raise EmptyDatasetError("the dataset has no training cases")
    for case in cases:
        shapes = {}
        for key in ("image", "label"):
            path = Path(case[key])
            if path.is_dir():
                raise DatasetError(
                    f"case {case['case']}: {key} {path} is a folder (DICOM?); convert it to NIfTI "
                    "first (medai-lab convert)"
                )
            if not path.is_file():
                raise DataPathError(f"case {case['case']}: {key} file not found: {path}")
            try:
                shapes[key] = tuple(int(n) for n in nib.load(str(path)).shape[:3])
            except Exception as exc:  # nibabel raises many types for unreadable files
                raise DatasetError(f"case {case['case']}: cannot read {key} {path}: {exc}") from exc
        if shapes["image"] != shapes["label"]:
            raise LabelShapeError(
                f"case {case['case']}: label shape {shapes['label']} differs from image shape "
                f"{shapes['image']} ({case['label']})"
            )


def split_cases(
    cases: Sequence[Case], val_fraction: float, seed: int
) -> tuple[list[Case], list[Case]]:
    """Seeded train/validation split: at least one case each (a single case serves both)."""
    cases = sorted(cases, key=lambda c: c["case"])
    n = len(cases)
    if n == 0:
        raise EmptyDatasetError("the dataset has no training cases")
    if n == 1:
        return list(cases), list(cases)
    n_val = min(max(1, round(n * float(val_fraction))), n - 1)
    order = np.random.default_rng(int(seed)).permutation(n)
    val = sorted((cases[i] for i in order[:n_val]), key=lambda c: c["case"])
    train = sorted((cases[i] for i in order[n_val:]), key=lambda c: c["case"])
    return train, val


def preprocess_key(config: Mapping[str, Any], frames: Any = None) -> str:
    """Short hash of everything that changes preprocessed volumes (names disk-cache folders)."""
    task = config["task"]
    keys = ("spacing", "intensity", "foreground_threshold")
    parts = {k: task.get(k) for k in keys}
    if frames is not None and frames != "all":  # 3-D datasets keep the keys they had
        parts["frames"] = frames
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


# --- torch side: classes built on first use so importing this module stays light ------------

_TORCH_CLASSES = ("EpochSampler", "SeededAugmentDataset", "SegmentationDataModule")


def __getattr__(name: str) -> Any:
    if name in _TORCH_CLASSES:
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- internals -------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a JSON object")
    return data


def _resolve(base: Path, ref: str) -> str:
    return str((base / ref).resolve()) if not Path(ref).is_absolute() else str(Path(ref))


def _msd_cases(root: Path) -> list[Case]:
    training = _read_json(root / "dataset.json").get("training") or []
    cases = []
    for i, item in enumerate(training):
        if not isinstance(item, Mapping) or "image" not in item or "label" not in item:
            raise DatasetError(f"{root / 'dataset.json'}: training entry {i} needs image and label")
        image, label = _resolve(root, str(item["image"])), _resolve(root, str(item["label"]))
        cases.append(
            {"case": str(item.get("case", case_id(image))), "image": image, "label": label}
        )
    return cases


def _folder_cases(root: Path) -> list[Case]:
    labels_dir = root / "labelsTr"
    cases = []
    for image in sorted((root / "imagesTr").iterdir()):
        # MSD archives carry macOS "._name" resource forks next to every file: not images.
        if image.name.startswith(".") or not image.name.endswith(_NIFTI):
            continue
        cid = case_id(image)
        label = next((p for e in _NIFTI if (p := labels_dir / f"{cid}{e}").exists()), None)
        label = label or labels_dir / f"{cid}.nii.gz"  # missing: check_cases names it
        cases.append({"case": cid, "image": str(image.resolve()), "label": str(label.resolve())})
    return cases


def _manifest_cases(path: Path) -> list[Case]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "image" not in columns or "label" not in columns:
            raise DatasetError(f"manifest {path} needs columns image,label; it has {columns}")
        cases = []
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("image") and not row.get("label"):
                continue  # blank line
            image, label = _resolve(path.parent, row["image"]), _resolve(path.parent, row["label"])
            cases.append(
                {"case": row.get("case") or case_id(image), "image": image, "label": label}
            )
    return cases


@functools.cache
def _torch_classes() -> dict[str, type]:
    """Define the torch/Lightning classes (imports torch, MONAI and Lightning)."""
    import pytorch_lightning as pl
    import torch
    from monai.transforms import Compose

    from medai_lab.datasets.frames import case_frames, frames_choice, spec_text
    from medai_lab.datasets.transforms import (
        EpochSampler,
        SeededAugmentDataset,
        augment_transforms,
        preprocess_transforms,
        sampling_prep_transforms,
    )

    class SegmentationDataModule(pl.LightningDataModule):
        """Train/val data of one task: cases found, checked, split, preprocessed and cached.

        Parameters
        ----------
        config
            Composed config (:func:`medai_lab.tasks.compose`): ``task``, ``data``, ``seed``.
        data
            MSD folder, imagesTr/labelsTr folder or CSV manifest (see :func:`find_cases`).
        cache_dir
            Root of the disk cache (``data.cache: disk``); a sub-folder per preprocessing.
        progress
            Show MONAI's caching progress bar.
        frames
            Which frames of 4-D images become channels (:mod:`medai_lab.datasets.frames`):
            default ``data.frames`` of the config, else what ``dataset.json`` records, else
            all. After :meth:`setup`, :attr:`in_channels` is the channel count ``C`` of every
            batch (``(B, C, x, y, z)``) and :attr:`frames` the choice applied.
        """

        def __init__(
            self,
            config: Mapping[str, Any],
            data: str | os.PathLike[str],
            cache_dir: str | os.PathLike[str] | None = None,
            progress: bool = True,
            frames: Any = None,
        ) -> None:
            super().__init__()
            self.config, self.data = config, Path(data)
            self.cache_dir = Path(cache_dir) if cache_dir is not None else None
            self.progress = progress
            self.frames = frames
            self.in_channels: int | None = None
            self.train_cases: list[Case] = []
            self.val_cases: list[Case] = []
            self.train_ds: Any = None
            self.val_ds: Any = None

        def setup(self, stage: str | None = None) -> None:
            if self.val_ds is not None:
                return  # fit, then validate: build (and cache) once
            cfg, seed = self.config, int(self.config["seed"])
            cases = find_cases(self.data)
            check_cases(cases)
            spec = self.frames if self.frames is not None else cfg["data"].get("frames")
            self.frames = spec_text(frames_choice(self.data, spec))
            # Every case checked up front: a frame missing in one case fails here, naming it.
            self.in_channels = len(case_frames(cases, self.frames)[0])
            self.train_cases, self.val_cases = split_cases(
                cases, float(cfg["data"]["val_fraction"]), seed
            )
            pre = preprocess_transforms(cfg, frames=self.frames)
            memory = cfg["data"]["cache"] == "memory"
            # Training items are cached padded, with class counts (cheaper draws, same patches).
            train_pre = Compose([*pre.transforms, *sampling_prep_transforms(cfg)])
            base = self._dataset(self.train_cases, train_pre, folder_suffix="-train")
            augment = augment_transforms(cfg, prepared=True)
            self.train_ds = SeededAugmentDataset(base, augment, seed, memory)
            self.val_ds = self._dataset(self.val_cases, pre)

        def _dataset(self, cases: list[Case], transform: Any, folder_suffix: str = "") -> Any:
            from monai.data import CacheDataset, PersistentDataset
            from monai.data import Dataset as MonaiDataset

            mode = self.config["data"]["cache"]
            if mode == "memory":
                workers = min(4, cpu_count())
                return CacheDataset(
                    cases, transform, num_workers=workers, progress=self.progress, copy_cache=False
                )
            if mode == "disk":
                root = self.config["data"].get("cache_dir") or self.cache_dir
                if root is None:
                    raise DatasetError("data.cache is disk but no data.cache_dir is set")
                folder = Path(root) / (preprocess_key(self.config, self.frames) + folder_suffix)
                folder.mkdir(parents=True, exist_ok=True)
                return PersistentDataset(cases, transform, cache_dir=folder)
            if mode == "none":
                return MonaiDataset(cases, transform)
            raise DatasetError(f"data.cache must be none, memory or disk, got {mode!r}")

        def _loader(self, dataset: Any, batch_size: int, sampler: Any = None) -> Any:
            from monai.data import DataLoader, ThreadDataLoader

            data = self.config["data"]
            kind = data["loader"]
            if kind not in ("thread", "torch"):
                raise DatasetError(f"data.loader must be thread or torch, got {kind!r}")
            workers = dataloader_workers(int(data["num_workers"]))
            generator = torch.Generator()
            generator.manual_seed(int(self.config["seed"]))
            cls = ThreadDataLoader if kind == "thread" else DataLoader
            return cls(
                dataset,
                batch_size=batch_size,
                sampler=sampler,
                shuffle=False,  # order comes from EpochSampler (train) or the case list (val)
                num_workers=workers,
                persistent_workers=workers > 0,
                pin_memory=torch.cuda.is_available(),
                generator=generator,
            )

        def train_dataloader(self) -> Any:
            trainer = getattr(self, "trainer", None)
            rank = trainer.global_rank if trainer is not None else 0
            world = trainer.world_size if trainer is not None else 1
            sampler = EpochSampler(len(self.train_ds), int(self.config["seed"]), True, rank, world)
            return self._loader(self.train_ds, int(self.config["data"]["batch_size"]), sampler)

        def val_dataloader(self) -> Any:
            return self._loader(self.val_ds, 1)

    # Pickled by name: medai_lab.datasets.msd.SegmentationDataModule (module __getattr__).
    SegmentationDataModule.__module__ = __name__
    SegmentationDataModule.__qualname__ = "SegmentationDataModule"
    return {
        "EpochSampler": EpochSampler,
        "SeededAugmentDataset": SeededAugmentDataset,
        "SegmentationDataModule": SegmentationDataModule,
    }

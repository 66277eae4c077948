"""Medical Segmentation Decathlon tasks downloaded with MONAI (needs a network)."""

from __future__ import annotations

import os
from pathlib import Path


def download_msd(task_id: str, root: str | os.PathLike[str]) -> Path:
    """Download and extract one Medical Segmentation Decathlon task with MONAI; returns its folder.

    Uses the URLs and MD5 sums of :class:`monai.apps.DecathlonDataset`. Needs network access.
    """
    from monai.apps import DecathlonDataset, download_and_extract

    from medai_lab.datasets.msd import DatasetError  # msd re-exports this function

    if task_id not in DecathlonDataset.resource:
        raise DatasetError(f"unknown MSD task {task_id!r}")
    root = Path(root)
    target = root / task_id
    if (target / "dataset.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    try:
        download_and_extract(
            url=DecathlonDataset.resource[task_id],
            filepath=root / f"{task_id}.tar",
            output_dir=str(root),
            hash_val=DecathlonDataset.md5[task_id],
            hash_type="md5",
        )
    except Exception as exc:  # network and archive errors come in many types
        raise DatasetError(f"could not download {task_id}: {exc}") from exc
    return target

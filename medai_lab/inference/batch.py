"""Segment a folder of images: one label map per image, atomic writes, failures set aside."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from medai_lab.inference.predictor import InferenceError, Predictor

IMAGE_SUFFIXES = (".nii.gz", ".nii")


@dataclass
class PredictReport:
    """What :func:`predict_folder` wrote and what it could not process (with the reason)."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"wrote {len(self.written)} label map(s)"]
        lines += [f"failed {name}: {why}" for name, why in sorted(self.failed.items())]
        return "\n".join(lines)


def image_files(folder: Path) -> list[Path]:
    """NIfTI images in ``folder`` (not recursive), hidden and partial files excluded."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(IMAGE_SUFFIXES) and not p.name.startswith(".")
    )


def predict_folder(
    model: str | os.PathLike[str] | Predictor,
    images: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> PredictReport:
    """Segment every NIfTI image in ``images`` (a folder or one file) into ``out_dir``.

    Outputs keep the input file names; an existing output is skipped unless ``overwrite``.
    A failing image is recorded in the report and does not stop the others.
    """
    from medai_lab.io import save_nifti
    from medai_lab.progress import progress_bar

    predictor = model if isinstance(model, Predictor) else Predictor.load(model)
    src = Path(images)
    if src.is_dir():
        files = image_files(src)
    elif src.is_file():
        files = [src]
    else:
        raise InferenceError(f"no such image or folder: {src}")
    if not files:
        raise InferenceError(f"no .nii/.nii.gz images in {src}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = PredictReport()
    for path in progress_bar(files, desc="predict", unit="image", enabled=progress):
        target = out / path.name
        if target.exists() and not overwrite:
            continue
        try:
            save_nifti(predictor.predict(path), target)
        except InferenceError as exc:
            report.failed[path.name] = str(exc)
            continue
        report.written.append(target)
    return report

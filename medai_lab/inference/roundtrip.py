"""The PACS round trip: pull a study, segment it with a model, send the result back as DICOM SEG.

Nothing here is new machinery: :mod:`medai_lab.pacs` pulls and stores, :mod:`medai_lab.io`
loads the series and writes the SEG (highdicom), :class:`~medai_lab.inference.Predictor` runs
the model on the image's own grid. The SEG references the series exactly as it was pulled, so
a de-identified pull gives a SEG with the de-identified UIDs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError


@dataclass
class RoundTripReport:
    """Where the pieces went and how long each step took (seconds)."""

    seg: Path
    labels: dict[int, str]
    voxels: dict[str, int]
    stored: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        found = ", ".join(f"{n} {c} voxels" for n, c in self.voxels.items()) or "nothing found"
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        where = "stored in the PACS" if self.stored else "not sent (no --store)"
        return f"wrote {self.seg}: {found}; {where}\n  {steps}"


def _algorithm(model: Path, contract: Mapping[str, Any]) -> Any:
    from medai_lab.io.seg import Algorithm

    name = str(contract.get("task") or contract.get("name") or model.stem)
    version = str(contract.get("version") or contract.get("medai_lab_version") or "1")
    run = contract.get("run_id") or contract.get("mlflow_run_id")
    return Algorithm(name=f"MedAI Lab {name}", version=version, run_id=str(run) if run else None)


def pick_image_series(report: Any, modality: str | None, series: int | str | None) -> int:
    """Index of the series to segment: ``series`` if given, else the largest of ``modality``."""
    from medai_lab.io.loader import pick_series

    if series is not None:
        return report.series.index(pick_series(report, series))
    candidates = [i for i, s in enumerate(report.series) if not modality or s.modality == modality]
    if not candidates:
        raise MedaiError(f"the study holds no {modality or 'image'} series to segment")
    return max(candidates, key=lambda i: report.series[i].n_frames)


def segment_study(
    client: Any,
    study_uid: str,
    model: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    series: int | str | None = None,
    store: bool = False,
    deidentifier: Any = None,
    device: str | None = None,
    progress: bool = True,
) -> RoundTripReport:
    """Pull ``study_uid``, predict with ``model``, write ``WORK/seg.dcm``, optionally store it.

    Parameters
    ----------
    client
        A :class:`medai_lab.pacs.base.PacsClient` (DICOMweb: STOW-RS; DIMSE: C-STORE).
    model
        An export (``.ts``/``.onnx`` with its contract), a checkpoint or a run folder.
    deidentifier
        Pull through the de-identifier (see ``medai-lab pacs pull --deid``); the SEG then
        references the de-identified series and must not be stored back into the source PACS.
    """
    import numpy as np

    from medai_lab.inference import Predictor
    from medai_lab.io.discovery import discover_series
    from medai_lab.io.loader import load_series
    from medai_lab.io.nifti import save_nifti
    from medai_lab.io.seg import write_seg
    from medai_lab.pacs.pull import pull
    from medai_lab.pacs.query import QueryFilter

    if store and deidentifier is not None:
        raise MedaiError("a de-identified result cannot go back to the source PACS: drop --store")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    predictor = Predictor.load(model, device=device)
    timings["load model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pulled = work / "dicom"
    pull(
        client,
        QueryFilter(study_uid=study_uid),
        pulled,
        deidentifier=deidentifier,
        progress=progress,
    )
    timings["pull"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = discover_series(pulled)
    index = pick_image_series(report, predictor.contract.modality, series)
    info = report.series[index]
    volume = load_series(info)
    image = work / "image.nii.gz"
    save_nifti(volume, image)
    prediction = predictor.predict(image)
    timings["predict"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = predictor.contract.label_map()
    seg = write_seg(
        prediction,
        [h.path for h in info.headers],
        work / "seg.dcm",
        labels=labels,
        algorithm=_algorithm(Path(model), predictor.meta),
    )
    timings["write SEG"] = time.perf_counter() - t0
    voxels = {n: int(np.count_nonzero(prediction.array == v)) for v, n in labels.items()}
    result = RoundTripReport(seg=seg, labels=labels, voxels=voxels, timings=timings)
    if store:
        t0 = time.perf_counter()
        sent = client.store([seg])
        if sent.failed or sent.sent != 1:
            why = next(iter(sent.failed.values()), "not accepted")
            raise MedaiError(f"the PACS did not accept the SEG: {why}")
        result.stored = True
        timings["store"] = time.perf_counter() - t0
    return result

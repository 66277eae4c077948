"""Case browser: the per-case metrics table of ``medai_lab.evaluation`` next to the viewer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medai_lab.errors import MedaiError

_NIFTI = (".nii.gz", ".nii")


def case_rows(report: Any, metric: str = "dice") -> list[dict[str, Any]]:
    """One row per case (metrics averaged over labels), worst ``metric`` first."""
    import pandas as pd

    df = pd.read_csv(report) if isinstance(report, (str, os.PathLike)) else pd.DataFrame(report)
    missing = {"case", metric} - set(df.columns)
    if missing:
        raise MedaiError(f"not a medai-lab evaluate table: no column {', '.join(sorted(missing))}")
    numeric = [c for c in ("dice", "hd95", "nsd") if c in df.columns]
    per_case = df.groupby("case", sort=False)[numeric].mean().reset_index()
    worst_first = metric != "hd95"  # low Dice/NSD is bad, high HD95 is bad
    per_case = per_case.sort_values(metric, ascending=worst_first, na_position="first")
    return per_case.to_dict("records")


def find_case(folder: str | os.PathLike[str] | None, case: str) -> Path | None:
    """``folder/case.nii.gz`` (or ``.nii``, or a DICOM folder named ``case``)."""
    if folder is None:
        return None
    for ext in (*_NIFTI, ""):
        path = Path(folder) / f"{case}{ext}"
        if path.exists():
            return path
    return None


def case_browser(
    report: Any,
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    predictions: str | os.PathLike[str] | None = None,
    *,
    metric: str = "dice",
    label_names: Any = None,
) -> Any:
    """A case list (worst first) and a viewer opening the chosen case with its overlays.

    Parameters
    ----------
    report
        The CSV of ``medai-lab evaluate`` (or its DataFrame).
    images, labels, predictions
        Folders with one ``<case>.nii.gz`` each (truth in ``labels``).
    """
    import ipywidgets as w

    from medai_lab.widgets.api import scene_of, view

    rows = case_rows(report, metric)
    if not rows:
        raise MedaiError("the metrics table has no cases")

    def label(row: dict[str, Any]) -> str:
        parts = [f"{k} {row[k]:.3f}" for k in ("dice", "hd95", "nsd") if k in row]
        return f"{row['case']}  " + "  ".join(parts)

    def load(case: str) -> Any:
        image = find_case(images, case)
        if image is None:
            raise MedaiError(f"no image for case {case} in {images}")
        return scene_of(image, find_case(labels, case), find_case(predictions, case),
                        label_names=label_names, title=case)  # fmt: skip

    picker = w.Select(options=[(label(r), r["case"]) for r in rows], rows=min(10, len(rows)),
                      layout=w.Layout(width="100%"))  # fmt: skip
    first = load(rows[0]["case"])
    viewer = view(first.image, first.labels, first.prediction, label_names=first.names)
    message = w.HTML()

    def on_pick(change: dict[str, Any]) -> None:
        try:
            viewer.update(load(change["new"]))
            message.value = ""
        except (MedaiError, OSError, ValueError) as exc:
            message.value = f"<b>cannot open {change['new']}:</b> {exc}"

    picker.observe(on_pick, names="value")
    box = w.VBox([w.HTML(f"<b>cases, worst {metric} first</b>"), picker, message, viewer])
    box.viewer, box.picker = viewer, picker  # type: ignore[attr-defined]
    return box

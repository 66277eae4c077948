"""Evaluate folders of NIfTI predictions against references: per-case table, CSV, summary.

Cases are paired by file name with ``.nii`` / ``.nii.gz`` stripped (``case_001.nii.gz`` in the
prediction folder answers ``case_001.nii`` in the reference folder). pandas and tqdm are imported
when a report is made, so ``import medai_lab.evaluation`` stays light.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medai_lab.atomic import atomic_path
from medai_lab.evaluation.labels import LabelsArg, normalize_labels, truth_label_names
from medai_lab.evaluation.metrics import EvaluationError, Tolerance, evaluate_case

if TYPE_CHECKING:
    import pandas as pd

    from medai_lab.io.volume import Volume

COLUMNS = ["case", "label", "label_name", "dice", "hd95", "nsd", "truth_voxels", "pred_voxels"]
METRICS = ("dice", "hd95", "nsd")


def case_name(path: str | os.PathLike[str]) -> str | None:
    """Case name of a NIfTI file (its name without ``.nii`` / ``.nii.gz``), else None."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return None


def evaluate_volumes(
    pred_volume: Volume,
    truth_volume: Volume,
    labels: Mapping[int, str],
    nsd_tolerance: Tolerance = 1.0,
    *,
    case: str | None = None,
    affine_tol_mm: float = 1e-3,
) -> list[dict[str, Any]]:
    """Metrics of one case given as two :class:`~medai_lab.io.Volume` objects on the same grid.

    The grids must match: same shape, and affines placing every corner of the grid within
    ``affine_tol_mm`` of each other (float32 rounding in NIfTI headers is far below 1e-3 mm).
    Spacing comes from the reference. Rows are those of :func:`evaluate_case` plus ``case``.
    """
    name = case if case is not None else "case"
    if pred_volume.shape != truth_volume.shape:
        raise EvaluationError(
            f"{name}: prediction shape {pred_volume.shape} differs from reference shape "
            f"{truth_volume.shape}"
        )
    gap = affine_difference_mm(pred_volume.affine, truth_volume.affine, truth_volume.shape)
    if not gap < affine_tol_mm:
        raise EvaluationError(
            f"{name}: prediction and reference grids are {gap:.3g} mm apart (affines must agree "
            f"within {affine_tol_mm:g} mm); resample the prediction onto the reference grid"
        )
    try:
        rows = evaluate_case(
            pred_volume.array, truth_volume.array, labels, truth_volume.spacing, nsd_tolerance
        )
    except EvaluationError as exc:
        raise EvaluationError(f"{name}: {exc}") from exc
    return [{"case": name, **row} for row in rows]


def affine_difference_mm(a: np.ndarray, b: np.ndarray, shape: Sequence[int]) -> float:
    """Largest distance (mm) between where two affines put the outer corners of a grid.

    Corners are voxel edges (index -0.5 and n - 0.5), so spacing differences count even along
    an axis one voxel thick; a rotation or zoom error grows with the grid as it really does.
    """
    corners = np.array(
        [[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
         for k in (-0.5, shape[2] - 0.5)]
    )  # fmt: skip
    diff = corners @ (np.asarray(a, float) - np.asarray(b, float))[:3].T
    return float(np.linalg.norm(diff, axis=1).max())


def evaluate_dirs(
    pred_dir: str | os.PathLike[str],
    truth_dir: str | os.PathLike[str],
    labels: LabelsArg = None,
    out_csv: str | os.PathLike[str] | None = None,
    nsd_tolerance: Tolerance = 1.0,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every reference case in ``truth_dir`` against the same-named prediction.

    Parameters
    ----------
    pred_dir, truth_dir
        Folders of ``.nii`` / ``.nii.gz`` label maps (not searched recursively).
    labels
        Label value -> name, or label values (ints or ``"N=name"`` strings). None infers them
        from the union of non-zero values over all cases. Values without a name take theirs
        from an MSD ``dataset.json`` in ``truth_dir`` or the folder above it (``labelsTr/``
        of a task), else ``label_<n>``.
    out_csv
        Where to write the per-case table (atomically: a temp file, then a rename).
    nsd_tolerance
        NSD tolerance in mm, or a dict label -> mm.
    workers
        Cases evaluated in parallel processes (1: in this process).
    progress
        Show a progress bar over cases.

    Returns
    -------
    pandas.DataFrame
        One row per case and label, columns :data:`COLUMNS`, sorted by case then label.

    Raises
    ------
    EvaluationError
        When a reference case has no prediction (one error listing them all), grids differ, or a
        folder holds no NIfTI files. Predictions without a reference are ignored with a warning.
    """
    import pandas as pd

    from medai_lab.progress import progress_bar

    truths, preds = _nifti_cases(truth_dir, "reference"), _nifti_cases(pred_dir, "prediction")
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise EvaluationError(
            f"{len(missing)} of {len(truths)} reference cases have no prediction in {pred_dir}: "
            f"{_some(missing)}"
        )
    extra = sorted(set(preds) - set(truths))
    if extra:
        warnings.warn(
            f"ignoring {len(extra)} prediction(s) with no reference in {truth_dir}: {_some(extra)}",
            stacklevel=2,
        )
    names = truth_label_names(truth_dir)
    label_map = normalize_labels(labels, names)
    jobs = [(c, preds[c], truths[c], label_map, nsd_tolerance, names) for c in sorted(truths)]
    rows: list[dict[str, Any]] = []
    with progress_bar(total=len(jobs), desc="evaluate", unit="case", enabled=progress) as bar:
        for case_rows in _run(jobs, workers):
            rows.extend(case_rows)
            bar.update(1)
    if label_map is None:
        rows = _fill_absent_labels(rows, names)
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values(["case", "label"], kind="stable")
    df = df.reset_index(drop=True)
    if out_csv is not None:
        write_csv_atomic(df, out_csv)
    return df


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV so that ``path`` only ever holds a complete file."""
    out = Path(path)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False, na_rep="nan")
    return out


def summarize(
    df: pd.DataFrame, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> pd.DataFrame:
    """Per-label statistics of a per-case table (as from :func:`evaluate_dirs`).

    For each metric: NaN-aware ``mean``, ``median``, ``std`` (ddof=1), a percentile-bootstrap
    confidence interval of the mean (``ci_low``, ``ci_high``; cases resampled with replacement,
    ``n_boot`` times) and ``n_undefined``, the number of cases where it is NaN (HD95 when exactly
    one mask is empty). Columns are ``<metric>_<statistic>`` plus ``label``, ``label_name``,
    ``n_cases``. Each label draws from its own stream seeded by ``(seed, label)``, so a label's CI
    does not change when other labels are added; the same resampled cases serve all metrics.
    """
    import pandas as pd

    need = {"label", *METRICS}
    if not need <= set(df.columns):
        raise EvaluationError(f"summary needs columns {sorted(need - set(df.columns))}")
    tail = (1.0 - confidence) / 2.0 * 100.0
    out = []
    for label, group in df.groupby("label", sort=True):
        value = int(label)  # type: ignore[call-overload]
        name = group["label_name"].iloc[0] if "label_name" in group else f"label_{value}"
        row: dict[str, Any] = {
            "label": value,
            "label_name": str(name),
            "n_cases": len(group),
        }
        rng = np.random.default_rng([seed, value % 2**32])
        idx = rng.integers(0, len(group), size=(n_boot, len(group))) if n_boot > 0 else None
        for metric in METRICS:
            row.update(_describe(metric, group[metric].to_numpy(dtype=float), idx, tail))
        out.append(row)
    columns = ["label", "label_name", "n_cases"] + [
        f"{m}_{s}" for m in METRICS for s in ("mean", "median", "std", "ci_low", "ci_high")
    ]
    columns += [f"{m}_n_undefined" for m in METRICS]
    return pd.DataFrame(out, columns=columns)


def format_summary(summary: pd.DataFrame, nsd_tolerance: Tolerance = 1.0) -> str:
    """A plain-text table of mean Dice / HD95 / NSD with their confidence intervals."""
    tol = f"@{nsd_tolerance:g}mm" if not isinstance(nsd_tolerance, Mapping) else ""
    head = ("label", "cases", "Dice [95% CI]", "HD95 mm [95% CI]", f"NSD{tol} [95% CI]")
    lines = [head]
    for r in summary.to_dict("records"):
        hd = _ci(r, "hd95", "{:.2f}")
        if r["hd95_n_undefined"]:
            hd += f" ({r['hd95_n_undefined']} undefined)"
        lines.append((str(r["label_name"]), str(r["n_cases"]), _ci(r, "dice"), hd, _ci(r, "nsd")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def run_evaluate_cli(
    pred_dir: str | os.PathLike[str],
    truth_dir: str | os.PathLike[str],
    out_csv: str | os.PathLike[str],
    nsd_tolerance: Tolerance = 1.0,
    *,
    labels: LabelsArg = None,
    workers: int = 1,
) -> int:
    """``medai-lab evaluate``: write the per-case CSV, print the per-label summary, return 0.

    :class:`EvaluationError` (a :class:`~medai_lab.errors.MedaiError`) propagates for the CLI to
    print as one line.
    """
    df = evaluate_dirs(
        pred_dir, truth_dir, labels, out_csv, nsd_tolerance, workers=workers, progress=True
    )
    print(format_summary(summarize(df), nsd_tolerance))
    print(f"per-case metrics ({df['case'].nunique()} cases): {out_csv}")
    return 0


# --- internals -------------------------------------------------------------------------------


def _nifti_cases(folder: str | os.PathLike[str], what: str) -> dict[str, Path]:
    root = Path(folder)
    if not root.is_dir():
        raise EvaluationError(f"{what} folder not found: {root}")
    cases: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        name = case_name(path)
        # Hidden names are temp/partial files from interrupted writers (see save_nifti).
        if name is None or path.name.startswith(".") or not path.is_file():
            continue
        if name in cases:
            raise EvaluationError(
                f"{what} case {name} is there twice: {cases[name].name}, {path.name}"
            )
        cases[name] = path
    if not cases:
        raise EvaluationError(f"no NIfTI files (.nii, .nii.gz) in {what} folder {root}")
    return cases


def _some(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _evaluate_pair(
    case: str,
    pred_path: Path,
    truth_path: Path,
    labels: dict[int, str] | None,
    nsd_tolerance: Tolerance,
    names: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Load and evaluate one case (top-level so that worker processes can run it)."""
    from medai_lab.io.nifti import load_nifti

    pred, truth = load_nifti(pred_path), load_nifti(truth_path)
    if labels is None:
        # Only this case's values: labels seen elsewhere are filled in afterwards (both empty).
        values = set(_values(pred.array)) | set(_values(truth.array))
        labels = {v: names.get(v, f"label_{v}") for v in sorted(values)}
    return evaluate_volumes(pred, truth, labels, nsd_tolerance, case=case)


def _values(arr: np.ndarray) -> list[int]:
    """Non-zero label values of a map."""
    vals = np.unique(arr)
    return [int(v) for v in vals if v != 0 and float(v).is_integer()]


def _run(jobs: list[tuple[Any, ...]], workers: int) -> Iterator[list[dict[str, Any]]]:
    """Yield each case's rows as it finishes, in this process or in a pool."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _evaluate_pair(*job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: a parent with threads (Jupyter, torch) can deadlock a forked child.
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx)
    try:
        futures = [pool.submit(_evaluate_pair, *job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        # On an error, do not wait for the remaining cases.
        pool.shutdown(wait=True, cancel_futures=True)


def _fill_absent_labels(
    rows: list[dict[str, Any]], names: Mapping[int, str]
) -> list[dict[str, Any]]:
    """Add both-empty rows for inferred labels that a case does not contain at all."""
    labels = sorted({r["label"] for r in rows})
    have = {(r["case"], r["label"]) for r in rows}
    extra = [
        {"case": case, "label": v, "label_name": names.get(v, f"label_{v}"), "dice": 1.0,
         "hd95": 0.0,
         "nsd": 1.0, "truth_voxels": 0, "pred_voxels": 0}
        for case in sorted({r["case"] for r in rows}) for v in labels if (case, v) not in have
    ]  # fmt: skip
    return rows + extra


def _describe(
    metric: str, values: np.ndarray, idx: np.ndarray | None, tail: float
) -> dict[str, float | int]:
    defined = values[~np.isnan(values)]
    n = defined.size
    stats: dict[str, float | int] = {
        f"{metric}_mean": float(defined.mean()) if n else math.nan,
        f"{metric}_median": float(np.median(defined)) if n else math.nan,
        f"{metric}_std": float(defined.std(ddof=1)) if n > 1 else math.nan,
        f"{metric}_ci_low": math.nan,
        f"{metric}_ci_high": math.nan,
        f"{metric}_n_undefined": int(values.size - n),
    }
    if idx is not None and n:
        # Resample whole cases (NaN included) and take the NaN-aware mean, the statistic reported;
        # a resample of only undefined cases has no mean and is left out.
        samples = values[idx]
        counts = (~np.isnan(samples)).sum(axis=1)
        means = np.nansum(samples, axis=1)[counts > 0] / counts[counts > 0]
        low, high = np.percentile(means, [tail, 100.0 - tail])
        stats[f"{metric}_ci_low"], stats[f"{metric}_ci_high"] = float(low), float(high)
    return stats


def _ci(row: dict[str, Any], metric: str, fmt: str = "{:.3f}") -> str:
    def f(x: float) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

    low, high = f(row[f"{metric}_ci_low"]), f(row[f"{metric}_ci_high"])
    return f"{f(row[f'{metric}_mean'])} [{low}, {high}]"

"""Per-case segmentation metrics (Dice, HD95, NSD), folder reports and bootstrap summaries.

Conventions (surfaces, distances, empty masks) are in :mod:`medai_lab.evaluation.metrics`.
Only numpy is imported here; scipy, pandas, tqdm and nibabel load when first used.
"""

from medai_lab.evaluation.metrics import (
    EvaluationError,
    dice_score,
    evaluate_case,
    hausdorff_distance,
    mask_metrics,
    normalized_surface_dice,
    surface,
    surface_distances,
)
from medai_lab.evaluation.report import (
    COLUMNS,
    evaluate_dirs,
    evaluate_volumes,
    format_summary,
    run_evaluate_cli,
    summarize,
    write_csv_atomic,
)

__all__ = [
    "COLUMNS",
    "EvaluationError",
    "dice_score",
    "evaluate_case",
    "evaluate_dirs",
    "evaluate_volumes",
    "format_summary",
    "hausdorff_distance",
    "mask_metrics",
    "normalized_surface_dice",
    "run_evaluate_cli",
    "summarize",
    "surface",
    "surface_distances",
    "write_csv_atomic",
]

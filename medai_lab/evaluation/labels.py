"""Which labels a report scores and what they are called.

``--labels`` values and names, completed from the MSD ``dataset.json`` that sits with the
reference label maps (so a report says ``liver``, not ``label_1``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from medai_lab.evaluation.metrics import EvaluationError

LabelsArg = Mapping[int, str] | Sequence[int | str] | None


def truth_label_names(truth_dir: str | os.PathLike[str]) -> dict[int, str]:
    """Label names of the MSD ``dataset.json`` in ``truth_dir`` or its parent, else ``{}``.

    An unreadable ``dataset.json`` is reported as a warning: the scores do not depend on it.
    """
    from medai_lab.datasets.msd import DatasetError, dataset_labels

    for folder in (Path(truth_dir), Path(truth_dir).resolve().parent):
        if (folder / "dataset.json").is_file():
            try:
                return dataset_labels(folder) or {}
            except (DatasetError, ValueError, TypeError) as exc:
                warnings.warn(f"label names not taken from {folder / 'dataset.json'}: {exc}",
                              stacklevel=3)  # fmt: skip
                return {}
    return {}


def normalize_labels(
    labels: LabelsArg, names: Mapping[int, str] | None = None
) -> dict[int, str] | None:
    """Label value -> name from a dict, a list of values, or ``"N"`` / ``"N=name"`` strings.

    A value given without a name is named from ``names`` (e.g. a ``dataset.json``), else
    ``label_<n>``.
    """
    names = names or {}
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        return {int(k): str(v) for k, v in labels.items()}
    out: dict[int, str] = {}
    for item in labels:
        text = str(item)
        value, _, name = text.partition("=")
        try:
            number = int(value)
        except ValueError:
            raise EvaluationError(f"label must be N or N=name, got {text!r}") from None
        out[number] = name.strip() or names.get(number, f"label_{number}")
    if not out:
        raise EvaluationError("no labels given")
    return out

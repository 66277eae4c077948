"""The challenge specification: a YAML file, validated into frozen dataclasses.

Example (paths are relative to the YAML file)::

    name: liver-hackathon
    title: Liver segmentation hackathon
    task: liver
    labels: {1: liver}              # default: the task's labels (liver, tumour)
    metrics:
      nsd_tolerance_mm: 2.0
      ranking: [dice, hd95]         # mean Dice, ties broken by mean HD95
      bootstrap: 1000
    limits:
      time_per_case_s: 120
      memory_mb: 4096
      submissions_per_day: 5
      team_concurrency: 1           # sandboxes one team may hold at once
    phases:
      validation:
        hidden: false
        data: public/               # MSD folder (imagesTr/ + labelsTr/), or images: + labels:
        formats: [predictions, torchscript, onnx, python]
      test:
        hidden: true
        images: /srv/hidden/imagesTs
        labels: /srv/hidden/labelsTs
        formats: [torchscript, onnx, python]
        submissions_per_day: 2
        feedback: {precision: 2, subset: 0.5, noise: 0.005}   # see challenge.feedback
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab import catalogue
from medai_lab.challenge.errors import SpecError
from medai_lab.challenge.validate import as_mapping, folder_path, hint, known_keys, number, require
from medai_lab.errors import MedaiError

FORMATS = ("torchscript", "onnx", "python", "predictions")
MODEL_FORMATS = ("torchscript", "onnx", "python")
ENTRY = {"torchscript": "model.ts", "onnx": "model.onnx", "python": "package", "predictions": ""}
METRIC_ORDER = {"dice": "desc", "hd95": "asc", "nsd": "desc"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TOP = ("name", "title", "task", "labels", "metrics", "limits", "phases")
_METRICS = ("nsd_tolerance_mm", "ranking", "bootstrap")
_PHASE = ("hidden", "data", "images", "labels", "formats", "submissions_per_day", "feedback")
_FEEDBACK = ("precision", "noise", "subset")


@dataclass(frozen=True)
class Limits:
    """What one submission may use (per case for time, per sandbox for the rest).

    Attributes
    ----------
    time_per_case_s
        Wall-clock seconds per case; the sandbox is killed when a case takes longer.
    startup_s
        Wall-clock seconds to start the sandbox and load the model (imports included).
    memory_mb
        Address-space limit of the sandbox (``RLIMIT_AS``), MiB.
    cpus
        CPU cores the sandbox may run on (affinity and thread counts).
    gpu
        Whether the sandbox sees the GPUs (``CUDA_VISIBLE_DEVICES``).
    output_mb
        Largest file, and largest total of files, the sandbox may write, MiB.
    submission_mb
        Largest submission (model, sidecar, package or predictions), MiB.
    processes
        Processes and threads the sandbox user may have (``RLIMIT_NPROC``).
    submissions_per_day
        Submissions per team, phase and UTC day (a phase may set its own).
    team_concurrency
        Sandboxes one team may hold at once when the evaluator runs several
        (``evaluate --workers N``); the others wait, and other teams go first.
    """

    time_per_case_s: float = 120.0
    startup_s: float = 180.0
    memory_mb: int = 4096
    cpus: int = 1
    gpu: bool = False
    output_mb: float = 64.0
    submission_mb: float = 512.0
    processes: int = 64
    submissions_per_day: int = 5
    team_concurrency: int = 1


@dataclass(frozen=True)
class Feedback:
    """What teams are shown of a hidden phase's scores (see :mod:`medai_lab.challenge.feedback`).

    Attributes
    ----------
    precision
        Decimal places of shown scores (None: as computed).
    noise
        Standard deviation of Gaussian noise added to shown means (0: none); fixed per
        submission, so asking again does not average it away.
    subset
        Share of cases the shown scores are computed on (1.0: all); the same random cases
        for every submission, unknown to teams.
    """

    precision: int | None = None
    noise: float = 0.0
    subset: float = 1.0

    @property
    def active(self) -> bool:
        return self.precision is not None or self.noise > 0 or self.subset < 1.0


@dataclass(frozen=True)
class Phase:
    """One phase: its data, what may be submitted and whether per-case results are shown."""

    name: str
    hidden: bool
    images: Path
    labels: Path
    formats: tuple[str, ...]
    submissions_per_day: int
    feedback: Feedback = field(default_factory=Feedback)


@dataclass(frozen=True)
class RankKey:
    """One ranking criterion: a metric's mean and the better direction (``desc``: higher)."""

    metric: str
    order: str


@dataclass(frozen=True)
class Spec:
    """A validated challenge (see the module docstring for the YAML)."""

    name: str
    title: str
    task: str
    labels: dict[int, str]
    phases: tuple[Phase, ...]
    ranking: tuple[RankKey, ...]
    nsd_tolerance_mm: float = 1.0
    bootstrap: int = 1000
    limits: Limits = field(default_factory=Limits)

    def phase(self, name: str | None = None) -> Phase:
        """The phase called ``name`` (default: the first one)."""
        if name is None:
            return self.phases[0]
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases)
        raise SpecError(f"challenge {self.name!r} has no phase {name!r}; phases: {known}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain YAML-ready data (absolute paths)."""
        return {
            "name": self.name,
            "title": self.title,
            "task": self.task,
            "labels": dict(self.labels),
            "metrics": {
                "nsd_tolerance_mm": self.nsd_tolerance_mm,
                "ranking": [{"metric": k.metric, "order": k.order} for k in self.ranking],
                "bootstrap": self.bootstrap,
            },
            "limits": dataclasses.asdict(self.limits),
            "phases": {
                p.name: {
                    "hidden": p.hidden,
                    "images": str(p.images),
                    "labels": str(p.labels),
                    "formats": list(p.formats),
                    "submissions_per_day": p.submissions_per_day,
                    "feedback": dataclasses.asdict(p.feedback),
                }
                for p in self.phases
            },
        }


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate a challenge YAML file (relative paths are taken from its folder)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"challenge spec not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise SpecError(f"{path.name} is not valid YAML{line}") from None
    return parse_spec(raw, base=path.parent)


def parse_spec(raw: Any, base: str | os.PathLike[str] = ".") -> Spec:
    """Validate spec data (as from YAML); relative data paths are resolved against ``base``."""
    base = Path(base).resolve()
    top = as_mapping(raw, "the challenge spec")
    known_keys(top, _TOP, "")
    name = require(top, "name", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(
            f"name must be 1-64 lower-case letters, digits, '.', '_' or '-', got {name!r}"
        )
    task = require(top, "task", "")
    if not isinstance(task, str) or catalogue.find(task) is None:
        raise SpecError(f"task must be one of {', '.join(catalogue.names())}, got {task!r}")
    labels = _labels(top.get("labels"), task)
    limits = _limits(top.get("limits"))
    metrics = as_mapping(top.get("metrics") or {}, "metrics")
    known_keys(metrics, _METRICS, "metrics.")
    tol = number(metrics.get("nsd_tolerance_mm", 1.0), "metrics.nsd_tolerance_mm", low=0.0)
    boot = metrics.get("bootstrap", 1000)
    if isinstance(boot, bool) or not isinstance(boot, int) or not 0 <= boot <= 100_000:
        raise SpecError(f"metrics.bootstrap must be a whole number 0-100000, got {boot!r}")
    ranking = _ranking(metrics.get("ranking", ["dice", "hd95"]))
    phases_raw = as_mapping(require(top, "phases", ""), "phases")
    if not phases_raw:
        raise SpecError("phases: at least one phase is needed")
    phases = tuple(_phase(str(k), v, base, limits) for k, v in phases_raw.items())
    title = top.get("title") or name
    if not isinstance(title, str):
        raise SpecError("title must be text")
    return Spec(name, title, task, labels, phases, ranking, tol, boot, limits)


# --- parts ------------------------------------------------------------------------------------


def _phase(name: str, raw: Any, base: Path, limits: Limits) -> Phase:
    where = f"phases.{name}"
    if not _NAME.match(name):
        raise SpecError(f"{where}: phase names are lower-case letters, digits, '.', '_', '-'")
    ph = as_mapping(raw, where)
    known_keys(ph, _PHASE, f"{where}.")
    hidden = ph.get("hidden", False)
    if not isinstance(hidden, bool):
        raise SpecError(f"{where}.hidden must be true or false, got {hidden!r}")
    if "data" in ph and ("images" in ph or "labels" in ph):
        raise SpecError(f"{where}: give either data (an MSD folder) or images + labels")
    if "data" in ph:
        root = folder_path(ph["data"], base, f"{where}.data")
        images, labels = root / "imagesTr", root / "labelsTr"
        if not images.is_dir() and (root / "imagesTs").is_dir():
            images, labels = root / "imagesTs", root / "labelsTs"
    else:
        images = folder_path(require(ph, "images", f"{where}."), base, f"{where}.images")
        labels = folder_path(require(ph, "labels", f"{where}."), base, f"{where}.labels")
    _check_cases(images, labels, where)
    default = ["torchscript", "onnx", "python"] + ([] if hidden else ["predictions"])
    formats = ph.get("formats", default)
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not formats:
        raise SpecError(f"{where}.formats must be a list from {', '.join(FORMATS)}")
    for fmt in formats:
        if fmt not in FORMATS:
            raise SpecError(f"{where}.formats: unknown format {fmt!r}; {hint(fmt, FORMATS)}")
    if hidden and "predictions" in formats:
        raise SpecError(
            f"{where}: a hidden phase cannot accept predictions (the images are not shown); "
            "use torchscript, onnx or python"
        )
    per_day = ph.get("submissions_per_day", limits.submissions_per_day)
    if isinstance(per_day, bool) or not isinstance(per_day, int) or per_day < 1:
        raise SpecError(f"{where}.submissions_per_day must be a whole number >= 1")
    feedback = _feedback(ph.get("feedback"), f"{where}.feedback")
    if feedback.active and not hidden:
        raise SpecError(f"{where}.feedback applies to hidden phases only (set hidden: true)")
    return Phase(name, hidden, images, labels, tuple(dict.fromkeys(formats)), per_day, feedback)


def _feedback(raw: Any, where: str) -> Feedback:
    data = as_mapping(raw or {}, where)
    known_keys(data, _FEEDBACK, f"{where}.")
    precision = data.get("precision")
    if precision is not None and (
        isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 6
    ):
        raise SpecError(f"{where}.precision must be a whole number 0-6, got {precision!r}")
    noise = number(data.get("noise", 0.0), f"{where}.noise", low=0.0)
    subset = number(data.get("subset", 1.0), f"{where}.subset", low=0.0, strict=True)
    if subset > 1.0:
        raise SpecError(f"{where}.subset is a share of cases in (0, 1], got {subset!r}")
    return Feedback(precision, noise, subset)


def _check_cases(images: Path, labels: Path, where: str) -> None:
    from medai_lab.evaluation.report import case_name

    for folder, what in ((images, "images"), (labels, "labels")):
        if not folder.is_dir():
            raise SpecError(f"{where}: {what} folder not found: {folder}")
    cases = {case_name(p) for p in images.iterdir() if not p.name.startswith(".")} - {None}
    truth = {case_name(p) for p in labels.iterdir() if not p.name.startswith(".")} - {None}
    if not cases:
        raise SpecError(f"{where}: no NIfTI images (.nii, .nii.gz) in {images}")
    missing = sorted(c for c in cases - truth if c is not None)
    if missing:
        raise SpecError(f"{where}: {len(missing)} image(s) have no label map: {missing[:5]}")


def _labels(raw: Any, task: str) -> dict[int, str]:
    try:
        known = catalogue.get(task).label_map()
    except MedaiError as exc:
        raise SpecError(str(exc)) from None
    if raw is None:
        return known
    if isinstance(raw, list):
        raw = {v: known.get(int(v), f"label_{v}") for v in raw}
    labels = as_mapping(raw, "labels")
    out: dict[int, str] = {}
    for key, value in labels.items():
        try:
            number = int(key)
        except (TypeError, ValueError):
            raise SpecError(f"labels: keys must be label values (1, 2, ...), got {key!r}") from None
        if number < 1 or number > 255:
            raise SpecError(f"labels: values are 1-255 (0 is background), got {number}")
        out[number] = str(value)
    if not out:
        raise SpecError("labels: at least one label is scored")
    return out


def _ranking(raw: Any) -> tuple[RankKey, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise SpecError("metrics.ranking must be a list such as [dice, hd95]")
    keys = []
    for item in raw:
        if isinstance(item, str):
            item = {"metric": item}
        item = as_mapping(item, "metrics.ranking item")
        known_keys(item, ("metric", "order"), "metrics.ranking.")
        metric = item.get("metric")
        if metric not in METRIC_ORDER:
            raise SpecError(
                f"metrics.ranking: unknown metric {metric!r}; {hint(metric, METRIC_ORDER)}"
            )
        order = item.get("order", METRIC_ORDER[metric])
        if order not in ("asc", "desc"):
            raise SpecError(f"metrics.ranking: order of {metric} must be asc or desc")
        keys.append(RankKey(metric, order))
    if len({k.metric for k in keys}) != len(keys):
        raise SpecError("metrics.ranking: a metric is listed twice")
    return tuple(keys)


def _limits(raw: Any) -> Limits:
    data = as_mapping(raw or {}, "limits")
    names = [f.name for f in dataclasses.fields(Limits)]
    known_keys(data, names, "limits.")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Limits):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "gpu":
            if not isinstance(value, bool):
                raise SpecError(f"limits.gpu must be true or false, got {value!r}")
        elif f.type in ("int", int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"limits.{f.name} must be a whole number >= 1, got {value!r}")
        else:
            value = number(value, f"limits.{f.name}", low=0.0, strict=True)
        values[f.name] = value
    return Limits(**values)

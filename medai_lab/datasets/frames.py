"""The 4th axis of a training case: which frames of a 4-D image become input channels.

A 4-D case (a 4-D NIfTI, e.g. what ``medai-lab convert`` writes for a cine, multi-phase,
multi-echo or diffusion series) is loaded channels-first: ``(C, x, y, z)``. Which frames make
the ``C`` channels is one documented choice, ``data.frames`` in a task config (or ``frames=`` of
:func:`medai_lab.datasets.cohort.build_cohort`), recorded in ``dataset.json`` under ``"frames"``:

``"all"`` (default)
    Every frame is a channel, in acquisition order (``C`` = number of frames).
``K`` (an integer) or ``[K1, K2, ...]``
    Those frames (0-based), in that order.
``"<axis>=<value>"``
    The frame whose 4th-axis value equals ``value``: ``axis`` is the axis name (``phase``,
    ``echo``, ``time``, ``diffusion``, ...) or its attribute (``trigger_time``, ``echo_time``,
    ``b_value``, ...), as in the sidecar JSON's ``Axis4`` that ``convert`` writes
    (e.g. ``"echo_time=30"``, ``"b_value=1000"``). The frame index may differ between cases.

A 3-D case is one channel whatever the choice (except an index other than 0, refused).
Only headers and JSON are read here (nibabel, no torch).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medai_lab.datasets.msd import DatasetError, find_cases
from medai_lab.io.sidecar import stem

FrameSpec = str | int | Sequence[int]


class FrameChoiceError(DatasetError):
    """The frame choice cannot be applied to a case (bad spec, value not found, index range)."""


def parse_frames(spec: FrameSpec | None) -> str | list[int] | tuple[str, float]:
    """``"all"``, a list of indices, or ``(axis, value)``; raises on anything else."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return "all"
    if isinstance(spec, bool):
        raise FrameChoiceError(f"data.frames must be all, an index or axis=value, got {spec!r}")
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, str):
        text = spec.strip()
        if "=" in text:
            axis, _, value = text.partition("=")
            try:
                return axis.strip(), float(value)
            except ValueError:
                raise FrameChoiceError(f"data.frames {spec!r}: value must be a number") from None
        if text.lstrip("-").isdigit():
            return [int(text)]
        raise FrameChoiceError(f"data.frames must be all, an index or axis=value, got {spec!r}")
    indices = list(spec)
    if not indices or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise FrameChoiceError(f"data.frames list must hold frame indices, got {spec!r}")
    return indices


def spec_text(spec: FrameSpec | None) -> str | list[int]:
    """The choice as recorded in ``dataset.json`` (JSON-ready, normalised)."""
    parsed = parse_frames(spec)
    if isinstance(parsed, tuple):
        return f"{parsed[0]}={parsed[1]:g}"
    return parsed


def image_frames(path: str | os.PathLike[str]) -> int:
    """Frames along the 4th axis of a NIfTI image (1 for a 3-D image); reads the header only."""
    import nibabel as nib

    shape = tuple(nib.load(str(path)).shape)  # type: ignore[attr-defined]
    if len(shape) > 4 or (len(shape) == 4 and shape[3] < 1):
        raise FrameChoiceError(f"{Path(path).name}: image has shape {shape}; want 3-D or 4-D")
    return int(shape[3]) if len(shape) == 4 else 1


def sidecar_axis(image: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``Axis4`` from the BIDS-style sidecar beside ``image`` (``x.nii.gz`` -> ``x.json``)."""
    base = stem(Path(image))
    path = base.with_name(f"{base.name}.json")
    if not path.is_file():
        return None
    try:
        axis = json.loads(path.read_text(encoding="utf-8")).get("Axis4")
    except (OSError, ValueError, AttributeError) as exc:
        raise FrameChoiceError(f"cannot read sidecar {path.name}: {exc}") from exc
    return dict(axis) if isinstance(axis, Mapping) else None


def select_frames(
    spec: FrameSpec | None, n_frames: int, axis: Mapping[str, Any] | None, case: str = "case"
) -> list[int]:
    """Indices of the frames that become channels, for one case of ``n_frames`` frames.

    ``axis`` is the case's 4th-axis description (name, attribute, unit, values), needed only
    for ``axis=value`` choices.
    """
    parsed = parse_frames(spec)
    if isinstance(parsed, str):  # "all"
        return list(range(n_frames))
    if isinstance(parsed, list):
        bad = [i for i in parsed if not -n_frames <= i < n_frames]
        if bad:
            raise FrameChoiceError(f"{case}: frame {bad[0]} out of range (it has {n_frames})")
        return [i % n_frames for i in parsed]
    name, value = parsed
    if not axis:
        raise FrameChoiceError(f"{case}: data.frames {name}={value:g} needs 4th-axis values "
                               "(a sidecar JSON with Axis4 beside the image)")  # fmt: skip
    if name not in (axis.get("name"), axis.get("attribute")):
        raise FrameChoiceError(
            f"{case}: its 4th axis is {axis.get('name')} ({axis.get('attribute')}), not {name}"
        )
    values = list(axis.get("values") or [])
    if len(values) != n_frames:
        raise FrameChoiceError(f"{case}: sidecar lists {len(values)} values for {n_frames} frames")
    hits = [i for i, v in enumerate(values) if _same(v, value)]
    if len(hits) != 1:
        found = "no" if not hits else "several"
        raise FrameChoiceError(
            f"{case}: {found} frame(s) with {name}={value:g} (values: {_preview(values)})"
        )
    return hits


def case_frames(cases: Sequence[Mapping[str, str]], spec: FrameSpec | None) -> list[list[int]]:
    """Frame indices of every case; all cases must give the same number of channels."""
    by_value = isinstance(parse_frames(spec), tuple)
    out = []
    for case in cases:
        n = image_frames(case["image"])
        axis = sidecar_axis(case["image"]) if by_value and n > 1 else None
        out.append(select_frames(spec, n, axis, case.get("case", "case")))
    counts = {len(f) for f in out}
    if len(counts) > 1:
        first = next(c for c, f in zip(cases, out, strict=True) if len(f) != len(out[0]))
        raise FrameChoiceError(
            f"cases give different channel counts ({sorted(counts)}), e.g. {first.get('case')}; "
            "choose frames so that every case gives the same number"
        )
    return out


def dataset_channels(data: str | os.PathLike[str], spec: FrameSpec | None = None) -> int:
    """Input channels ``C`` of a dataset under a frame choice (``in_channels`` of a model).

    ``spec`` defaults to the choice recorded in ``dataset.json`` (``"frames"``), else ``"all"``.
    """
    chosen = frames_choice(data, spec)
    return len(case_frames(find_cases(data), chosen)[0])


def record_frames(data: str | os.PathLike[str], spec: FrameSpec | None = None) -> dict[str, Any]:
    """Check ``spec`` against every case of an MSD folder and record it in ``dataset.json``.

    Writes ``"frames"``: the choice, the channel count and, for 4-D images, the 4th axis
    (name, attribute, unit) and the first case's values of the chosen frames; sets
    ``"tensorImageSize"`` to ``"4D"`` when the images are 4-D. Returns what it recorded.
    """
    from medai_lab import atomic

    path = Path(data) / "dataset.json"
    if not path.is_file():
        raise FrameChoiceError(f"no dataset.json in {data}: frames are recorded there")
    cases = find_cases(data)
    chosen = case_frames(cases, spec)
    first = cases[0]["image"]
    info = json.loads(path.read_text(encoding="utf-8"))
    record: dict[str, Any] = {"choice": spec_text(spec), "channels": len(chosen[0])}
    axis = sidecar_axis(first) if image_frames(first) > 1 else None
    if axis:
        values = list(axis.get("values") or [])
        record["axis"] = {k: axis.get(k) for k in ("name", "attribute", "unit")}
        record["values"] = [values[i] for i in chosen[0] if i < len(values)]
    if image_frames(first) > 1:
        info["tensorImageSize"] = "4D"
    info["frames"] = record
    atomic.write_text(path, json.dumps(info, indent=2) + "\n")
    return record


def frames_choice(data: str | os.PathLike[str], spec: FrameSpec | None) -> FrameSpec:
    """``spec`` when given, else what ``dataset.json`` records, else ``"all"``."""
    if spec is not None:
        return spec
    path = Path(data) / "dataset.json"
    if path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("frames")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, Mapping):
            return recorded.get("choice", "all")  # type: ignore[no-any-return]
    return "all"


def _same(a: Any, b: float) -> bool:
    try:
        return math.isclose(float(a), b, rel_tol=1e-6, abs_tol=1e-6)
    except (TypeError, ValueError):
        return False


def _preview(values: list[Any]) -> str:
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:8])
    return shown + (", ..." if len(values) > 8 else "")

"""The model contract: what a trained network expects and how its output becomes labels.

One frozen, typed :class:`ModelContract` is the single home of this knowledge. Training builds
it from the run config (:func:`medai_lab.tasks.module.export_contract`), export writes it into
the model's JSON sidecar (and a MONAI bundle), inference and the challenge read it back. Its
JSON form is the flat mapping the sidecars have always held, so old exports still load.

No torch, no numpy: this module sits at the bottom of the layers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medai_lab.errors import MedaiError

__all__ = ["ContractError", "Inference", "Intensity", "ModelContract"]

INTENSITY_MODES = ("ct_window", "zscore")
BLEND_MODES = ("constant", "gaussian")


class ContractError(MedaiError):
    """A model contract is missing a field or holds a value of the wrong kind."""


@dataclass(frozen=True)
class Intensity:
    """Intensity transform: a CT window scaled to [0, 1] (clipped) or a z-score."""

    mode: str
    a_min: float | None = None
    a_max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.mode == "ct_window":
            return {"mode": self.mode, "a_min": self.a_min, "a_max": self.a_max}
        return {"mode": self.mode}


@dataclass(frozen=True)
class Inference:
    """Sliding-window settings and post-processing, exactly as validation used them."""

    sw_batch_size: int = 4
    overlap: float = 0.25
    mode: str = "gaussian"
    keep_largest: tuple[int, ...] = ()  # labels kept as one largest connected component

    def to_dict(self) -> dict[str, Any]:
        return {
            "sw_batch_size": self.sw_batch_size,
            "overlap": self.overlap,
            "mode": self.mode,
            "keep_largest": list(self.keep_largest),
        }


@dataclass(frozen=True)
class ModelContract:
    """Everything needed to run a segmentation network on an image file.

    ``labels`` maps foreground values to names (``((1, "liver"), (2, "tumour"))``); the network
    outputs one logit channel per value from 0 to the largest.
    """

    task: str
    patch_size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    intensity: Intensity
    labels: tuple[tuple[int, str], ...]
    in_channels: int = 1
    orientation: str = "RAS"
    foreground_threshold: float | None = None
    model: str | None = None
    modality: str | None = None
    inference: Inference = field(default_factory=Inference)
    # 4-D inputs: which frames become the channels, as training chose them (``data.frames``):
    # "all", frame indices, or "axis=value" (read from the image's sidecar for each image)
    frames: str | tuple[int, ...] = "all"

    def label_map(self) -> dict[int, str]:
        """``{1: "liver", 2: "tumour"}``."""
        return dict(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping written into sidecars (labels keyed by text)."""
        out: dict[str, Any] = {
            "task": self.task,
            "in_channels": self.in_channels,
            "patch_size": list(self.patch_size),
            "spacing": list(self.spacing),
            "orientation": self.orientation,
            "intensity": self.intensity.to_dict(),
            "foreground_threshold": self.foreground_threshold,
            "labels": {str(k): v for k, v in self.labels},
            "model": self.model,
            "inference": self.inference.to_dict(),
        }
        if self.modality is not None:
            out["modality"] = self.modality
        if self.frames != "all":  # 3-D models keep the sidecars they always had
            out["frames"] = self.frames if isinstance(self.frames, str) else list(self.frames)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"model contract is not JSON: {exc.msg}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: ModelContract | Mapping[str, Any]) -> ModelContract:
        """From a sidecar / contract mapping; other keys (format, versions ...) are ignored."""
        if isinstance(raw, ModelContract):
            return raw
        if not isinstance(raw, Mapping):
            raise ContractError("a model contract must be a mapping")
        for key in ("patch_size", "spacing", "intensity", "labels"):
            if key not in raw:
                raise ContractError(f"the model's contract has no {key!r}")
        inf = raw.get("inference") or {}
        if not isinstance(inf, Mapping):
            raise ContractError("the model's contract: inference must be a mapping")
        threshold = raw.get("foreground_threshold")
        return cls(
            task=str(raw.get("task") or "model"),
            patch_size=_triple(raw["patch_size"], "patch_size", int),
            spacing=_triple(raw["spacing"], "spacing", float),
            intensity=_intensity(raw["intensity"]),
            labels=_labels(raw["labels"]),
            in_channels=_whole(raw.get("in_channels", 1), "in_channels"),
            orientation=str(raw.get("orientation") or "RAS"),
            foreground_threshold=None if threshold is None else _real(threshold, "threshold"),
            model=None if raw.get("model") is None else str(raw["model"]),
            modality=None if raw.get("modality") is None else str(raw["modality"]),
            inference=Inference(
                sw_batch_size=_whole(inf.get("sw_batch_size", 4), "inference.sw_batch_size"),
                overlap=_real(inf.get("overlap", 0.25), "inference.overlap"),
                mode=_choice(inf.get("mode", "gaussian"), BLEND_MODES, "inference.mode"),
                keep_largest=tuple(
                    _whole(v, "inference.keep_largest") for v in inf.get("keep_largest") or ()
                ),
            ),
            frames=frames_of(raw.get("frames")),
        )


def frames_of(value: Any) -> str | tuple[int, ...]:
    """A frame choice in its contract form: ``"all"``, a tuple of indices or ``"axis=value"``.

    Only the form is checked here; :mod:`medai_lab.datasets.frames` applies it.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all")):
        return "all"
    if isinstance(value, str):
        if "=" not in value:
            raise _fail("frames", value)
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (_whole(value, "frames"),)
    if isinstance(value, list | tuple) and value:
        return tuple(_whole(v, "frames") for v in value)
    raise _fail("frames", value)


def _fail(what: str, value: Any) -> ContractError:
    return ContractError(f"the model's contract: bad {what} {value!r}")


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _fail(what, value)
    return int(value)


def _real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(what, value)
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise _fail(what, value)
    return str(value)


def _triple(value: Any, what: str, kind: type) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise _fail(what, value)
    items = [_whole(v, what) if kind is int else _real(v, what) for v in value]
    if any(v <= 0 for v in items):
        raise _fail(what, value)
    return tuple(items)


def _intensity(raw: Any) -> Intensity:
    if not isinstance(raw, Mapping):
        raise _fail("intensity", raw)
    mode = _choice(raw.get("mode"), INTENSITY_MODES, "intensity.mode")
    if mode == "ct_window":
        return Intensity(
            mode, _real(raw.get("a_min"), "intensity.a_min"), _real(raw.get("a_max"), "a_max")
        )
    return Intensity(mode)


def _labels(raw: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, Mapping):
        raise ContractError("the model's contract: labels must map label values to names")
    pairs = []
    for key, value in raw.items():
        try:
            number = int(key)
        except (TypeError, ValueError):
            raise _fail("label value", key) from None
        if number != 0:  # background is implied
            pairs.append((number, str(value)))
    return tuple(sorted(pairs))

"""The :class:`LabelMap` result shared by the RTSTRUCT and SEG readers, and its two rules.

A label map is one integer volume on a reference image's grid. Two decisions are made the
same way for every source of labels, so they live here:

* which label value an ROI / segment name fills (:func:`assign_labels`), through the structure
  vocabulary in :mod:`medai_lab.io.structures`;
* what a voxel claimed by two labels becomes (:func:`resolve_overlaps`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from medai_lab.errors import MedaiError
from medai_lab.io.structures import Structure, fills, match_structure, normalise
from medai_lab.io.volume import Volume

OVERLAP_RULES = ("later", "smaller", "error")


@dataclass(eq=False)
class LabelMap:
    """Labels read from an RTSTRUCT or SEG, on the grid of a reference image.

    Attributes
    ----------
    volume
        Integer label map with the reference's shape and affine (uint8; uint16 above 255).
    labels
        Label value -> label name (the task's names, or the ROI / segment names when no task
        labels were given).
    sources
        Label value -> the ROI / segment names that filled it.
    unmapped
        ROI / segment names that matched no requested label (reported, not an error).
    empty
        ROIs / segments without a voxel on this grid.
    warnings
        One line each, without patient identifiers.
    """

    volume: Volume
    labels: dict[int, str]
    sources: dict[int, list[str]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[int, int]:
        """Voxel count per label value (0 for labels that got no voxel)."""
        hist = np.bincount(np.asarray(self.volume.array).ravel())
        return {v: int(hist[v]) if v < hist.size else 0 for v in self.labels}

    def describe(self) -> str:
        """A short human summary: one line per label, then what was left out."""
        shape = "x".join(str(n) for n in self.volume.shape)
        lines = [f"{len(self.labels)} label(s) on a {shape} grid"]
        for value, n in self.counts().items():
            src = ", ".join(self.sources.get(value, [])) or "-"
            lines.append(f"  {value}: {self.labels[value]} <- {src} ({n} voxels)")
        if self.unmapped:
            lines.append("  unmapped: " + ", ".join(self.unmapped))
        if self.empty:
            lines.append("  empty: " + ", ".join(self.empty))
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def label_dtype(max_value: int) -> np.dtype:
    """uint8 up to 255 labels, uint16 above (more than 65535 is refused)."""
    if max_value > np.iinfo(np.uint16).max:
        raise MedaiError(f"label value {max_value} does not fit a uint16 label map")
    return np.dtype(np.uint8 if max_value <= np.iinfo(np.uint8).max else np.uint16)


def paint_order(values: Sequence[int], sizes: Sequence[int], rule: str) -> list[int]:
    """Indices of the masks in the order they are painted (the last painted wins a voxel).

    ``later``: list order (readers pass masks sorted by label value, so the higher value wins;
    a nodule labelled 2 stays visible inside the lung labelled 1). ``smaller``: masks with fewer
    voxels are painted last, so small structures survive inside large ones (ties: list order).
    ``error``: list order; the caller refuses any overlap.
    """
    if rule not in OVERLAP_RULES:
        raise MedaiError(f"overlap rule must be one of {', '.join(OVERLAP_RULES)}, not {rule!r}")
    order = list(range(len(values)))
    if rule == "smaller":
        # Sizes of one label value add up: a label's size is what all its masks cover together.
        total: dict[int, int] = {}
        for v, n in zip(values, sizes, strict=True):
            total[v] = total.get(v, 0) + int(n)
        order.sort(key=lambda i: (-total[values[i]], i))
    return order


def paint(
    out: np.ndarray, value: int, region: tuple[slice, ...], mask: np.ndarray, rule: str
) -> int:
    """Paint ``value`` where ``mask`` is set inside ``out[region]``; return voxels taken over.

    The count is how many voxels already held another label value. With ``rule="error"`` any
    such voxel raises :class:`MedaiError` and nothing is painted.
    """
    view = out[region]
    before = view[mask]
    taken = int(np.count_nonzero((before != 0) & (before != value)))
    if taken and rule == "error":
        other = int(before[(before != 0) & (before != value)][0])
        raise MedaiError(
            f"labels {other} and {value} overlap in {taken} voxels (overlap rule 'error')"
        )
    view[mask] = value
    return taken


def resolve_overlaps(masks: list[tuple[int, np.ndarray]], rule: str = "later") -> np.ndarray:
    """Combine boolean masks into one label array.

    Parameters
    ----------
    masks
        ``(label value, boolean mask)`` pairs, all the same shape. Masks sharing a value are
        united. Values must be >= 1.
    rule
        What a voxel claimed by two different label values becomes:

        * ``"later"`` (default): the mask later in the list wins. The readers pass masks in
          increasing label value, so the higher label value wins.
        * ``"smaller"``: the label with fewer voxels wins (small findings inside organs).
        * ``"error"``: any overlap between different values raises :class:`MedaiError`.

    Returns
    -------
    numpy.ndarray
        uint8 label array (uint16 when a value is above 255); 0 where no mask is set.
    """
    if not masks:
        raise MedaiError("no masks to combine")
    shape = np.shape(masks[0][1])
    values = [int(v) for v, _ in masks]
    if min(values) < 1:
        raise MedaiError("label values must be 1 or more (0 is background)")
    if any(np.shape(m) != shape for _, m in masks):
        raise MedaiError("masks to combine differ in shape")
    sizes = [int(np.count_nonzero(m)) for _, m in masks]
    out = np.zeros(shape, dtype=label_dtype(max(values)))
    everything = tuple(slice(None) for _ in shape)
    for i in paint_order(values, sizes, rule):
        paint(out, values[i], everything, np.asarray(masks[i][1], dtype=bool), rule)
    return out


def _label_structures(labels: Mapping[int, str]) -> dict[int, Structure | None]:
    return {v: match_structure(name) for v, name in labels.items()}


def _target(
    name: str,
    labels: Mapping[int, str],
    structs: Mapping[int, Structure | None],
    synonyms: Mapping[str, str] | None,
) -> int | None:
    key = normalise(name)
    # 1. the ROI name is the label name (also for labels the vocabulary does not know)
    for value, label in labels.items():
        if normalise(label) == key:
            return value
    # 2. a caller's synonym that names a task label directly (e.g. {"PTV_60": "target"})
    for alias, target in (synonyms or {}).items():
        if normalise(alias) == key:
            for value, label in labels.items():
                if normalise(label) == normalise(target):
                    return value
    # 3. the vocabulary: the structure itself first, then the organ it is part of
    found = match_structure(name, synonyms)
    if found is None:
        return None
    for value, s in structs.items():
        if s is not None and s.name == found.name:
            return value
    for value, label in labels.items():
        if fills(found, label):
            return value
    return None


def assign_labels(
    names: list[str],
    labels: Mapping[int, str] | None,
    synonyms: Mapping[str, str] | None,
) -> tuple[dict[str, int], list[str]]:
    """Which label value each ROI / segment name fills.

    Parameters
    ----------
    names
        ROI / segment names in file order.
    labels
        Task labels, value -> name (e.g. ``{1: "lung", 2: "nodule"}``). ``None``: every name gets
        its own value 1..N in file order.
    synonyms
        More ROI names -> structure (or task label) names, checked before the built-in table.

    Returns
    -------
    (dict, list)
        ROI name -> label value, and the names that fill no requested label (in file order).

    Raises
    ------
    MedaiError
        Two ROIs share a name (compared without case and surrounding spaces), or a label value
        is below 1.
    """
    seen: dict[str, str] = {}
    for name in names:
        key = name.strip().casefold()
        if key in seen:
            raise MedaiError(f"two ROIs/segments are both named {name.strip()!r}; rename one")
        seen[key] = name
    if labels is None:
        return {name: i for i, name in enumerate(names, start=1)}, []
    if any(int(v) < 1 for v in labels):
        raise MedaiError("label values must be 1 or more (0 is background)")
    structs = _label_structures(labels)
    mapping: dict[str, int] = {}
    unmapped: list[str] = []
    for name in names:
        value = _target(name, labels, structs, synonyms)
        if value is None:
            unmapped.append(name)
        else:
            mapping[name] = int(value)
    return mapping, unmapped

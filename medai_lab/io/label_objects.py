"""Label objects beside the images: RTSTRUCT and DICOM SEG files, found from headers alone.

Discovery lists them with the image series they reference; :func:`read_label_object` turns one
into a :class:`~medai_lab.io.labelmap.LabelMap` on a reference image's grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medai_lab.errors import DicomError

if TYPE_CHECKING:
    from medai_lab.io.labelmap import LabelMap
    from medai_lab.io.volume import Volume

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"  # dcmqi --segmentationType labelmap
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
KINDS = {SEG_SOP_CLASS: "SEG", LABEL_MAP_SEG_SOP_CLASS: "SEG", RTSTRUCT_SOP_CLASS: "RTSTRUCT"}


@dataclass
class LabelObject:
    """One RTSTRUCT or SEG file and what it points at (header facts, no identifiers kept)."""

    path: Path
    kind: str  # "RTSTRUCT" or "SEG"
    frame_of_reference_uid: str = ""
    series_uids: list[str] = field(default_factory=list)
    study_uid: str = ""
    names: list[str] = field(default_factory=list)  # ROI names / segment labels
    problem: str = ""  # why it cannot be used, one line; empty when fine

    def references(self, series_uid: str, frame_of_reference_uid: str = "") -> bool:
        """Whether this object labels the image series ``series_uid``.

        An object that names no series (allowed for RTSTRUCT) matches on frame of reference.
        """
        if self.series_uids:
            return series_uid in self.series_uids
        return (
            bool(frame_of_reference_uid) and frame_of_reference_uid == self.frame_of_reference_uid
        )

    def summary(self, series_index: int | None = None) -> str:
        """One line for ``medai-lab info``."""
        noun = "ROI" if self.kind == "RTSTRUCT" else "segment"
        names = ", ".join(self.names[:6]) + (", ..." if len(self.names) > 6 else "")
        where = (
            f"labels series [{series_index}]"
            if series_index is not None
            else "references a series not in this folder"
        )
        if self.problem:
            where = f"unusable: {self.problem}"
        return f"{self.kind}: {len(self.names)} {noun}(s) ({names}); {where}"


def label_kind(path: Path) -> str | None:
    """``"RTSTRUCT"``, ``"SEG"`` or ``None``, from the SOP Class UID alone (cheap)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, specific_tags=["SOPClassUID"], stop_before_pixels=True)
    except Exception:  # not DICOM or damaged: discovery reports it elsewhere
        return None
    return KINDS.get(str(getattr(ds, "SOPClassUID", "")))


def read_label_object(path: Path, kind: str) -> LabelObject:
    """Header facts of an RTSTRUCT/SEG file; a damaged one comes back with ``problem`` set."""
    obj = LabelObject(path=path, kind=kind)
    try:
        refs = _references(path, kind)
    except Exception as err:  # one line in the listing instead of a failed scan
        obj.problem = _one_line(err)
        return obj
    obj.frame_of_reference_uid = str(refs.get("frame_of_reference_uid") or "")
    obj.series_uids = [str(u) for u in refs.get("series_uids") or []]
    obj.study_uid = str(refs.get("study_uid") or "")
    obj.names = [str(n) for n in refs.get("roi_names") or refs.get("segment_labels") or []]
    return obj


def _references(path: Path, kind: str) -> Mapping[str, Any]:
    if kind == "RTSTRUCT":
        from medai_lab.io.rtstruct import rtstruct_references

        return rtstruct_references(path)
    from medai_lab.io.seg_read import seg_references

    return seg_references(path)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def read_labels(
    obj: LabelObject,
    reference: Volume,
    *,
    labels: Mapping[int, str] | None = None,
    synonyms: Mapping[str, str] | None = None,
    overlap: str = "later",
) -> LabelMap:
    """The label map of ``obj`` on ``reference``'s grid (RTSTRUCT or SEG reader)."""
    if obj.problem:
        raise DicomError(f"{obj.kind} cannot be read: {obj.problem}")
    if obj.kind == "RTSTRUCT":
        from medai_lab.io.rtstruct import read_rtstruct

        return read_rtstruct(obj.path, reference, labels=labels, synonyms=synonyms, overlap=overlap)
    from medai_lab.io.seg_read import read_seg

    return read_seg(obj.path, reference, labels=labels, synonyms=synonyms, overlap=overlap)


def merge_label_maps(maps: Sequence[LabelMap], labels: Mapping[int, str] | None) -> LabelMap:
    """One label map from several objects on the same grid; later objects win where they overlap.

    With task ``labels`` the values already agree; without them each object's names are
    renumbered into one table (same name -> same value).
    """
    from medai_lab.io.labelmap import LabelMap, resolve_overlaps
    from medai_lab.io.volume import Volume

    if len(maps) == 1:
        return maps[0]
    names: dict[str, int] = {}
    masks: list[tuple[int, Any]] = []
    sources: dict[int, list[str]] = {}
    for m in maps:
        for value, name in m.labels.items():
            target = value if labels else names.setdefault(name, len(names) + 1)
            masks.append((target, m.volume.array == value))
            sources.setdefault(target, []).extend(m.sources.get(value, []))
    table = dict(labels) if labels else {v: n for n, v in names.items()}
    array = resolve_overlaps(masks, "later")
    first = maps[0]
    warnings = [w for m in maps for w in m.warnings]
    warnings.append(f"{len(maps)} label objects merged; later ones win where they overlap")
    return LabelMap(
        volume=Volume(array, first.volume.affine, dict(first.volume.meta)),
        labels={v: n for v, n in table.items() if v in sources},
        sources=sources,
        unmapped=sorted({u for m in maps for u in m.unmapped}),
        empty=sorted({e for m in maps for e in m.empty}),
        warnings=warnings,
    )

"""Find the image series in a folder tree from headers alone (no pixel data is read)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medai_lab.cpushare import cpu_count
from medai_lab.errors import DicomError
from medai_lab.io.headers import ImageHeader, NotAnImage, read_header
from medai_lab.io.label_objects import KINDS, LabelObject, label_kind, read_label_object


@dataclass
class SeriesInfo:
    """One stack of images that can form a volume: same series, orientation and size."""

    uid: str  # SeriesInstanceUID, or a derived key when the files have none
    headers: list[ImageHeader]
    derived_uid: bool = False

    @property
    def modality(self) -> str:
        return self.headers[0].modality

    @property
    def description(self) -> str:
        return self.headers[0].series_description

    @property
    def n_files(self) -> int:
        return len(self.headers)

    @property
    def n_frames(self) -> int:
        return sum(h.n_frames for h in self.headers)

    @property
    def size(self) -> tuple[int, int]:
        return self.headers[0].columns, self.headers[0].rows

    def fourth_axis(self) -> str:
        """The 4th axis from headers alone: '' for 3-D, else name, size and values (one line)."""
        from medai_lab.io.fourd import group_volumes
        from medai_lab.io.geometry import all_frames, slice_normal

        refs = all_frames(self.headers)
        try:
            found = group_volumes(refs, slice_normal(refs[0].geometry.iop))  # type: ignore[union-attr]
        except DicomError as exc:
            return f"slices share positions: {exc}"
        if found is None:
            return ""
        axis = found[0].describe()
        shown = [_short(v) for v in axis["values"][:8]]
        more = ", ..." if axis["size"] > 8 else ""
        unit = f" {axis['unit']}" if axis["unit"] else ""
        return (
            f"4-D: {axis['size']} x {axis['name']} ({axis['attribute']}{unit}: "
            f"{', '.join(shown)}{more})"
        )

    def summary(self) -> str:
        """One line, without identifiers."""
        cols, rows = self.size
        desc = f" '{self.description}'" if self.description else ""
        derived = " (no SeriesInstanceUID; grouped by geometry)" if self.derived_uid else ""
        axis = self.fourth_axis()
        return (
            f"{self.modality or '??'} {cols}x{rows}, {self.n_frames} slice(s) in "
            f"{self.n_files} file(s){desc}{derived}{'; ' + axis if axis else ''}"
        )


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class DiscoveryReport:
    """What a folder holds: image series, files ignored (with reasons), damaged files."""

    root: Path
    series: list[SeriesInfo] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    n_files: int = 0
    labels: list[LabelObject] = field(default_factory=list)  # RTSTRUCT / SEG files

    def series_index(self, obj: LabelObject) -> int | None:
        """Index of the image series ``obj`` labels, or ``None`` when it is not here."""
        for i, s in enumerate(self.series):
            if obj.references(s.uid, s.headers[0].frame_of_reference):
                return i
        return None

    def labels_for(self, index: int) -> list[LabelObject]:
        """The usable label objects of image series ``index``, in file order."""
        return [o for o in self.labels if not o.problem and self.series_index(o) == index]

    def describe(self) -> str:
        lines = [f"{len(self.series)} series in {self.n_files} file(s)"]
        lines += [f"  [{i}] {s.summary()}" for i, s in enumerate(self.series)]
        if self.labels:
            lines.append(f"  {len(self.labels)} label object(s):")
            lines += [f"    {o.summary(self.series_index(o))}" for o in self.labels]
        if self.skipped:
            lines.append(f"  ignored {len(self.skipped)} file(s): {_reason_counts(self.skipped)}")
        if self.corrupt:
            lines.append(f"  damaged {len(self.corrupt)} file(s): {_reason_counts(self.corrupt)}")
        return "\n".join(lines)


def _reason_counts(items: Sequence[tuple[Path, str]]) -> str:
    counts: dict[str, int] = {}
    for _, reason in items:
        counts[reason] = counts.get(reason, 0) + 1
    return "; ".join(f"{n} {r}" for r, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def list_files(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> tuple[Path, list[Path]]:
    """The root and the regular files to look at (a folder is walked recursively, sorted)."""
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise DicomError(f"no such file or folder: {root}")
        if root.is_file():
            return root.parent, [root]
        if not os.access(root, os.R_OK | os.X_OK):
            raise DicomError(f"permission denied: cannot list folder {root}")
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files += [Path(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
        return root, files
    files = [Path(f) for f in source]
    if not files:
        raise DicomError("no files given")
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DicomError(f"no such file: {missing[0]}")
    return Path(os.path.commonpath([f.parent for f in files])), files


def discover_series(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, workers: int | None = None
) -> DiscoveryReport:
    """Scan headers under ``source`` and group the images into series.

    Files are grouped by SeriesInstanceUID; files without one (de-identification sometimes
    empties it) are grouped by frame of reference, modality, series/acquisition number,
    orientation and size. A series whose files differ in orientation or size is split into
    one stack each, so no stack mixes geometries.
    """
    root, files = list_files(source)
    # Label objects are listed, never stacked into an image series (``report.labels``).
    report = DiscoveryReport(root=root, n_files=len(files))
    if not files:
        raise DicomError(f"folder is empty: {root}")

    results = _scan_all(files, workers or min(4, cpu_count()))
    groups: dict[tuple[str, ...], list[ImageHeader]] = {}
    for path, res in zip(files, results, strict=True):
        if isinstance(res, LabelObject):
            report.labels.append(res)
            continue
        if isinstance(res, NotAnImage):
            (report.corrupt if res.corrupt else report.skipped).append((path, res.reason))
            continue
        groups.setdefault(_group_key(res), []).append(res)
    for key, headers in groups.items():
        report.series.append(
            SeriesInfo(uid=key[0], headers=headers, derived_uid=key[1] == "derived")
        )
    report.series.sort(key=lambda s: (s.headers[0].series_number.zfill(8), s.uid, -s.n_frames))
    return report


Scanned = ImageHeader | NotAnImage | LabelObject
_PROCESS_MIN = 2000  # files: below this, worker processes cost more than they save (measured)
_CHUNK = 250  # files a process task: large enough that pickling overhead stays small


def _scan(path: Path) -> Scanned:
    """The header of one file, its label object, or why it is not an image."""
    try:
        header = read_header(path)
    except NotAnImage as why:
        # RTSTRUCT has no pixels; a SEG may not look like a slice: ask its SOP class.
        kind = None if why.corrupt else label_kind(path)
        return read_label_object(path, kind) if kind else why
    kind = KINDS.get(header.sop_class)
    return read_label_object(path, kind) if kind else header


def _scan_chunk(paths: list[Path]) -> list[Scanned]:
    return [_scan(p) for p in paths]


def _scan_all(files: list[Path], workers: int) -> list[Scanned]:
    """Scan ``files`` in order: in worker processes for large folders, else in this thread.

    Header parsing is pure Python under the GIL: threads made a 300-file scan about twice
    as slow (GIL hand-offs on every read), and so did a second thread reading pixel data
    during the scan, so smaller folders are read in one thread; on folders of thousands of
    files, forked processes parse in parallel (each header pickled back costs ~15 % of
    parsing it).
    """
    import multiprocessing as mp

    if workers > 1 and len(files) >= _PROCESS_MIN and "fork" in mp.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor

        chunks = [files[i : i + _CHUNK] for i in range(0, len(files), _CHUNK)]
        # fork: workers start in milliseconds with everything already imported.
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return [r for part in pool.map(_scan_chunk, chunks) for r in part]
    return [_scan(f) for f in files]


def _group_key(h: ImageHeader) -> tuple[str, ...]:
    iop = h.frames[0].iop
    # Orientation rounded so that float noise in the header does not split a series.
    orient = ",".join(f"{v:.3f}" for v in np.round(iop, 3) + 0.0)
    size = f"{h.rows}x{h.columns}"
    if h.series_uid:
        return (h.series_uid, "uid", orient, size)
    parts = [
        h.study_uid,
        h.frame_of_reference,
        h.modality,
        h.series_number,
        h.acquisition_number,
        h.series_description,
        h.sop_class,
    ]
    digest = hashlib.sha1("|".join([*parts, orient, size]).encode()).hexdigest()[:16]
    return (f"derived-{digest}", "derived", orient, size)

"""``load_series``: a DICOM folder, file or file list to a :class:`Volume` with exact geometry."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from medai_lab.errors import DicomError
from medai_lab.io.discovery import DiscoveryReport, SeriesInfo, discover_series
from medai_lab.io.geometry import stack_geometry
from medai_lab.io.pixels import apply_rescale, read_frames
from medai_lab.io.volume import Volume

Source = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def load_series(
    source: Source | SeriesInfo,
    *,
    series: int | str | None = None,
    allow_gaps: bool = False,
    workers: int | None = None,
) -> Volume:
    """Load one DICOM image series as a :class:`Volume`.

    Parameters
    ----------
    source
        A folder (searched recursively), a file, a list of files, or a :class:`SeriesInfo`
        from :func:`discover_series`.
    series
        Which series when ``source`` holds several: index in the discovery order or a
        SeriesInstanceUID.
    allow_gaps
        Fill missing slices with blank slices (value = rescale intercept) instead of failing.
    workers
        Threads for reading headers and pixels (default: one per core, at most 4).

    Raises
    ------
    DicomError
        With one line saying what is wrong: no series, several series, damaged files,
        irregular geometry, undecodable pixel data.
    """
    info = (
        source
        if isinstance(source, SeriesInfo)
        else pick_series(discover_series(source, workers=workers), series)
    )
    geom = stack_geometry(info.headers, allow_gaps=allow_gaps)
    first = info.headers[0]
    stored = read_frames(geom.frames, first.rows, first.columns, workers=workers)
    slopes = np.array([r.geometry.slope if r.geometry else 1.0 for r in geom.frames])
    inters = np.array([r.geometry.intercept if r.geometry else 0.0 for r in geom.frames])
    if geom.missing:
        # Blank slices take the series' own intercept, so they read as "nothing" (air in CT).
        inters[geom.missing] = np.median(np.delete(inters, geom.missing))
        slopes[geom.missing] = 1.0
    values = apply_rescale(stored, slopes, inters)
    # (k, row, col) in memory is (i, j, k) = (col, row, slice) transposed: a view, no copy.
    array = values.transpose(2, 1, 0)
    meta = {
        "source": "dicom",
        "modality": first.modality,
        "series_description": first.series_description,
        "series_uid": info.uid,
        "study_uid": first.study_uid,
        "frame_of_reference_uid": first.frame_of_reference,
        "manufacturer": first.manufacturer,
        "transfer_syntaxes": sorted({h.transfer_syntax for h in info.headers}),
        "n_files": info.n_files,
        "rescale_slope": float(slopes[0]) if np.all(slopes == slopes[0]) else None,
        "rescale_intercept": float(inters[0]) if np.all(inters == inters[0]) else None,
        "bits_stored": first.bits_stored,
        "slice_step": geom.slice_step,
        "missing_slices": geom.missing,
        "warnings": geom.warnings,
        "description": f"MedAI Lab {first.modality}".strip(),
    }
    return Volume(array, geom.affine, meta)


def pick_series(report: DiscoveryReport, series: int | str | None) -> SeriesInfo:
    """The series to load from ``report``, or a one-line :class:`DicomError` saying why not."""
    if report.corrupt:
        path, reason = report.corrupt[0]
        raise DicomError(
            f"{len(report.corrupt)} damaged DICOM file(s) in {report.root} (first: {path.name}: "
            f"{reason}); the series would be incomplete"
        )
    if not report.series:
        why = f" ({_reasons(report)})" if report.skipped else ""
        raise DicomError(f"no DICOM image series in {report.root}{why}")
    if series is None:
        if len(report.series) > 1:
            raise DicomError(
                f"{len(report.series)} series in {report.root}: choose one with "
                f"series=<index or SeriesInstanceUID> (CLI: --series); "
                + " | ".join(f"[{i}] {s.summary()}" for i, s in enumerate(report.series))
            )
        return report.series[0]
    if isinstance(series, int) or (isinstance(series, str) and series.isdigit()):
        idx = int(series)
        if not 0 <= idx < len(report.series):
            raise DicomError(f"series index {idx} out of range (0..{len(report.series) - 1})")
        return report.series[idx]
    matches = [s for s in report.series if s.uid == series]
    if len(matches) != 1:
        raise DicomError(
            "no series with that SeriesInstanceUID"
            if not matches
            else "that SeriesInstanceUID holds several stacks; choose by index"
        )
    return matches[0]


def _reasons(report: DiscoveryReport) -> str:
    counts: dict[str, int] = {}
    for _, reason in report.skipped:
        counts[reason] = counts.get(reason, 0) + 1
    return "; ".join(f"{n} file(s): {r}" for r, n in counts.items())

"""``load_series``: a DICOM folder, file or file list to a :class:`Volume` with exact geometry."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from medai_lab.cpushare import cpu_count
from medai_lab.errors import DicomError, SeriesGeometryError
from medai_lab.io.discovery import DiscoveryReport, SeriesInfo, discover_series
from medai_lab.io.fourd import FourthAxis, group_volumes
from medai_lab.io.geometry import StackGeometry, all_frames, slice_normal, stack_refs
from medai_lab.io.rescale import read_values
from medai_lab.io.vendor import acquisition_facts, add_vendor_dims, vendor_scaling
from medai_lab.io.volume import Volume

Source = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def load_series(
    source: Source | SeriesInfo,
    *,
    series: int | str | None = None,
    allow_gaps: bool = False,
    workers: int | None = None,
    philips_scaling: str = "float",
) -> Volume:
    """Load one DICOM image series as a :class:`Volume` (3-D, or 4-D when slices share positions).

    A series whose slices share positions (time points, cardiac phases, echoes, diffusion
    volumes, repeated acquisitions) loads as a 4-D volume ``array[i, j, k, t]``; the varying
    attribute and its values are in :attr:`Volume.axis4`, the attributes of each volume in
    ``meta["volumes"]``.

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
    philips_scaling
        Philips MR only: ``"float"`` (default, as dcm2niix's default ``-p y``) gives the
        scanner's floating-point values, ``(stored * RescaleSlope + RescaleIntercept) /
        (RescaleSlope * private ScaleSlope)``; ``"display"`` gives the standard rescale only
        (what DICOM viewers show). Recorded in ``meta["scaling"]``.

    Raises
    ------
    DicomError
        With one line saying what is wrong: no series, several series, damaged files,
        irregular geometry, duplicate slices, incomplete 4-D volumes, undecodable pixel data.
    """
    workers = workers or min(4, cpu_count())
    info = (
        source
        if isinstance(source, SeriesInfo)
        else pick_series(discover_series(source, workers=workers), series)
    )
    axis, geoms = stack_volumes(info, allow_gaps=allow_gaps)
    first = info.headers[0]
    frames = [r for g in geoms for r in g.frames]
    slopes = np.array([r.geometry.slope if r.geometry else 1.0 for r in frames])
    inters = np.array([r.geometry.intercept if r.geometry else 0.0 for r in frames])
    nz = len(geoms[0].frames)
    missing = [t * nz + k for t, g in enumerate(geoms) for k in g.missing]
    if missing:
        # Blank slices take the series' own intercept, so they read as "nothing" (air in CT).
        inters[missing] = np.median(np.delete(inters, missing))
        slopes[missing] = 1.0
    scaling = vendor_scaling(info, frames, slopes, inters, philips=philips_scaling)
    values = read_values(frames, first.rows, first.columns, slopes, inters, workers=workers)
    # (t, k, row, col) in memory is (i, j, k, t) = (col, row, slice, t) transposed: a view.
    if axis is None:
        array = values.transpose(2, 1, 0)
    else:
        array = values.reshape(len(geoms), nz, *values.shape[1:]).transpose(3, 2, 1, 0)
    geom = geoms[0]
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
        "warnings": list(geom.warnings),
        "description": f"MedAI Lab {first.modality}".strip(),
        "acquisition": acquisition_facts(frames),
    }
    if scaling:
        meta["scaling"] = scaling
    if axis is not None:
        meta["axis4"] = axis.describe()
        meta["volumes"] = axis.volumes
    return Volume(array, geom.affine, meta)


def stack_volumes(
    info: SeriesInfo, *, allow_gaps: bool = False
) -> tuple[FourthAxis | None, list[StackGeometry]]:
    """The 4th axis (``None`` for 3-D) and the ordered geometry of each volume.

    Raises
    ------
    SeriesGeometryError
        Irregular geometry, duplicates, incomplete volumes, or volumes on different grids.
    """
    refs = all_frames(info.headers)
    assert refs[0].geometry is not None
    normal = slice_normal(refs[0].geometry.iop)
    grouped = group_volumes(refs, normal, more_dims=lambda: add_vendor_dims(info.headers))
    if grouped is None:
        return None, [stack_refs(refs, allow_gaps=allow_gaps)]
    axis, volumes = grouped
    geoms = [stack_refs(v, allow_gaps=allow_gaps) for v in volumes]
    for t, g in enumerate(geoms[1:], start=1):
        if len(g.frames) != len(geoms[0].frames) or not np.allclose(
            g.affine, geoms[0].affine, atol=1e-3
        ):
            raise SeriesGeometryError(
                f"volume {t} of the 4-D series ({axis.name}) lies on a different grid than volume 0"
            )
    return axis, geoms


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

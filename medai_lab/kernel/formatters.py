"""Rich display of DICOM datasets (masked header tables) and volumes (three-plane PNG)."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from medai_lab.kernel import state

MASK = "\u2022\u2022\u2022 masked"
MAX_VALUE = 80  # characters of a value shown
MAX_ROWS = 400  # rows of the "all attributes" list
SUMMARY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyDate", "StudyDescription", "SeriesDescription", "Modality", "BodyPartExamined",
    "Manufacturer", "ManufacturerModelName", "InstitutionName", "Rows", "Columns",
    "NumberOfFrames", "PixelSpacing", "SliceThickness", "ImagePositionPatient",
    "ImageOrientationPatient", "BitsStored", "PhotometricInterpretation", "RescaleSlope",
    "RescaleIntercept", "WindowCenter", "WindowWidth", "SOPClassUID", "StudyInstanceUID",
    "SeriesInstanceUID",
)  # fmt: skip


@cache
def identifying_tags() -> frozenset[int]:
    """Tags the PS3.15 Basic Profile does not keep as they are (X, Z, D, U or C)."""
    from medai_lab.deid.profile import Profile

    return frozenset(tag for tag, action in Profile.build().actions.items() if action != "K")


def is_identifying(tag: int) -> bool:
    """Whether the attribute may identify the patient: in the profile table, private, or an
    overlay / curve group (which can carry burned-in text)."""
    group = tag >> 16
    return bool(group & 1) or (group & 0xFF00) in (0x5000, 0x6000) or tag in identifying_tags()


def _value(elem: Any) -> str:
    if elem.VR == "SQ":
        return f"sequence of {len(elem.value)} item(s)"
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "\u2026"


def rows(ds: Any, keywords: tuple[str, ...] | None = None) -> list[tuple[str, str, str, bool]]:
    """(tag, name, shown value, masked) for the summary keywords or every element of ``ds``."""
    out = []
    if keywords is None:
        elements = [e for e in ds if e.tag != 0x7FE00010]
    else:
        elements = [ds[k] for k in keywords if k in ds]
    for elem in elements:
        masked = not state.SHOW_PHI and is_identifying(int(elem.tag)) and not elem.is_empty
        value = MASK if masked else _value(elem)
        name = elem.keyword or elem.name
        out.append((f"({elem.tag.group:04X},{elem.tag.element:04X})", name, value, masked))
    return out


def _syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return f"{uid.name}" if uid is not None else ""


def _table(items: list[tuple[str, str, str, bool]]) -> str:
    cells = []
    for tag, name, value, masked in items:
        style = ' style="color:var(--jp-ui-font-color2,#888);font-style:italic"' if masked else ""
        cells.append(f"<tr><td><code>{tag}</code></td><td>{html.escape(name)}</td>"
                     f"<td{style}>{html.escape(value)}</td></tr>")  # fmt: skip
    return '<table style="font-size:12px">' + "".join(cells) + "</table>"


def dataset_html(ds: Any) -> str:
    """Compact header table (key attributes) plus a collapsible list of all attributes."""
    summary = rows(ds, SUMMARY)
    every = rows(ds)
    n_masked = sum(r[3] for r in every)
    note = ("identifying attributes shown (%medai phi on)" if state.SHOW_PHI else
            f"{n_masked} identifying attribute(s) masked; %medai phi on shows them")  # fmt: skip
    syntax = _syntax(ds)
    head = f"DICOM dataset, {len(every)} attributes"
    head += f", {html.escape(syntax)}" if syntax else ""
    more = every[:MAX_ROWS]
    cut = f"<p>... {len(every) - MAX_ROWS} more</p>" if len(every) > MAX_ROWS else ""
    return (
        f'<div class="medai-dicom"><b>{head}</b> <small>({html.escape(note)})</small>'
        f"{_table(summary)}<details><summary>all attributes</summary>{_table(more)}{cut}"
        "</details></div>"
    )


def dataset_pretty(ds: Any, p: Any, cycle: bool) -> None:
    """text/plain: the summary attributes, masked as in the HTML (notebooks store both)."""
    if cycle:
        p.text("Dataset(...)")
        return
    lines = [f"DICOM dataset ({len(ds)} attributes)"]
    lines += [f"  {name}: {value}" for _tag, name, value, _m in rows(ds, SUMMARY)]
    p.text("\n".join(lines))


def volume_png(volume: Any, height: int = 240) -> bytes:
    """Axial, coronal and sagittal planes through the centre, CT soft-tissue or p1..p99 window."""
    from medai_lab.widgets.render import three_planes_png
    from medai_lab.widgets.scene import Scene

    ras = volume.to_ras()
    _preset, window = Scene(ras).auto_window()
    cursor = tuple(n // 2 for n in ras.shape)
    return three_planes_png(ras.array, ras.spacing, cursor, window, height=height)  # type: ignore[arg-type]

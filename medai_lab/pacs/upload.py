"""``upload``: send a folder to a PACS, refusing up front what a PACS would silently drop.

Files without Study/Series/SOP Instance UIDs or SOP Class UID cannot be stored: Orthanc answers
HTTP 400 to REST, 0xA700 to C-STORE and -- worse -- HTTP 200 with nothing stored to STOW-RS.
They are reported with the fix (``medai-lab deid`` gives them consistent keyed UIDs).
"""

from __future__ import annotations

import os
from pathlib import Path

from medai_lab.pacs.base import PacsClient, StoreReport
from medai_lab.pacs.query import PacsError

REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


def upload_problem(path: Path) -> str | None:
    """Why ``path`` cannot be uploaded, or None (headers only, the file is not modified)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(REQUIRED))
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        return f"not a readable DICOM file ({type(exc).__name__})"
    missing = [k for k in REQUIRED if not str(ds.get(k, "") or "").strip()]
    if missing:
        return (
            f"empty {', '.join(missing)}: a PACS cannot store it; run `medai-lab deid` on the "
            "folder first (it assigns consistent keyed UIDs) and upload the result"
        )
    return None


def is_part10(path: Path) -> bool:
    """A DICOM Part 10 file (128-byte preamble, then ``DICM``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def upload(client: PacsClient, folder: str | os.PathLike[str]) -> tuple[StoreReport, list[str]]:
    """Send every DICOM file under ``folder``.

    Returns the report (failed paths relative to ``folder``) and the files skipped: non-DICOM
    files (audits, notes) and anything under a ``quarantine/`` folder, which ``medai-lab deid``
    fills with the *identifiable* originals it refused.
    """
    from medai_lab.deid.tree import list_inputs

    root = Path(folder)
    if not root.is_dir():
        raise PacsError(f"no such folder: {root}")
    rels = list_inputs(root)
    if not rels:
        raise PacsError(f"no files in {root}")
    report, ok, skipped = StoreReport(), [], []
    for rel in rels:
        if "quarantine" in Path(rel).parts or not is_part10(root / rel):
            skipped.append(rel)
            continue
        problem = upload_problem(root / rel)
        if problem:
            report.failed[rel] = problem
        else:
            ok.append(root / rel)
    if ok:
        sent = client.store(ok)
        report.sent = sent.sent
        for name, why in sent.failed.items():
            path = Path(name)
            report.failed[path.relative_to(root).as_posix() if path.is_absolute() else name] = why
    return report, skipped

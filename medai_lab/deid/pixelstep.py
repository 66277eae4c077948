"""The pixel step: OCR check and redaction of one file after its header was de-identified.

Runs in the process that de-identified the header (a tree worker, or the thread of a PACS
pull), on the header-de-identified bytes, so nothing it reports or writes can quote an
original header value. The OCR itself lives in :mod:`medai_lab.deid.pixels`, imported
lazily (OCR engines are heavy). What this step records is the decision, the number of text
regions and frames and the engine name, never the text found.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass

from medai_lab.errors import MedaiError

POLICIES = ("redact", "quarantine", "off")
_PHRASE = re.compile(r"[^A-Za-z0-9 ,;:()/.+_-]")
# one OCR call at a time per process: PACS pulls call the de-identifier from several
# threads, and OCR engine handles are not promised to be thread-safe
_LOCK = threading.Lock()


@dataclass(frozen=True)
class PixelResult:
    """What the pixel step did to one file (audit columns ``pixels`` .. ``ocr_engine``)."""

    action: str = "skipped"  # clean | redacted | quarantined | skipped
    boxes: int = 0
    frames: int = 0
    engine: str = ""


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`POLICIES`, else one clear error."""
    if policy not in POLICIES:
        raise MedaiError(f"unknown pixel policy {policy!r}: choose redact, quarantine or off")
    return policy


def require_engine(policy: str) -> None:
    """Fail in one line, before any work, when ``policy`` needs OCR and there is none."""
    if check_policy(policy) == "off":
        return
    try:
        from medai_lab.deid.pixels import engine_available
    except ImportError as exc:
        raise MedaiError(
            f"--pixels {policy} needs the pixel checker (medai_lab.deid.pixels: "
            f"{type(exc).__name__}); use --pixels off to de-identify headers only"
        ) from None
    why = engine_available()
    if why:
        why = " ".join(str(why).split())
        raise MedaiError(f"--pixels {policy}: {why}; or use --pixels off (headers only)")


def _phrase(text: str) -> str:
    """A reason as one short line of plain characters (it goes into files and terminals)."""
    return " ".join(_PHRASE.sub(" ", str(text)).split())[:120] or "unspecified"


def run(data: bytes, policy: str) -> tuple[bytes | None, str, PixelResult]:
    """Check one header-de-identified Part 10 file under ``policy``.

    Returns
    -------
    (bytes, "", result)
        Write these bytes (``data`` itself when nothing changed).
    (None, reason, result)
        Quarantine the input; ``reason`` is a fixed category phrase (``pixels: ...``).
    """
    if policy == "off":
        return data, "", PixelResult()
    from medai_lab.deid.pixels import check_pixels

    try:
        with _LOCK, warnings.catch_warnings():
            # decoder warnings may quote values; this process prints nothing about a file
            warnings.simplefilter("ignore")
            out = check_pixels(data, policy)  # redacted data says BurnedInAnnotation NO
            if out.action == "redacted" and out.data is None:
                raise MedaiError("redaction gave no data")
    except Exception as exc:  # any failure of the checker: the file is not written
        reason = f"pixels: check failed ({type(exc).__name__})"
        return None, reason, PixelResult("quarantined", 0, 0, "")
    engine = _phrase(out.engine) if out.engine else ""
    if out.action == "quarantine":
        result = PixelResult("quarantined", out.boxes, out.frames_checked, engine)
        reason = _phrase(out.reason)
        return None, reason if reason.startswith("pixels:") else f"pixels: {reason}", result
    if out.action == "redacted":
        return out.data, "", PixelResult("redacted", out.boxes, out.frames_checked, engine)
    if out.action in ("clean", "skipped"):
        written = out.data if out.data is not None else data
        return written, "", PixelResult(out.action, out.boxes, out.frames_checked, engine)
    return None, "pixels: unknown outcome", PixelResult("quarantined", 0, 0, engine)

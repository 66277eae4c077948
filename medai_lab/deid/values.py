"""Value rewrites that need to look inside a value: dummies, date shifts, text cleaning."""

from __future__ import annotations

import datetime as dt
import re

# Dummy values: non-empty, valid for the VR, carrying nothing (PS3.15 E.1 action D).
_TEXT_DUMMY = b"ANONYMOUS"
DUMMIES: dict[str, bytes] = {
    "AE": _TEXT_DUMMY,
    "AS": b"000Y",
    "CS": _TEXT_DUMMY,
    "DA": b"19000101",
    "DS": b"0 ",
    "DT": b"19000101000000",
    "IS": b"0 ",
    "LO": _TEXT_DUMMY,
    "LT": _TEXT_DUMMY,
    "PN": _TEXT_DUMMY,
    "SH": _TEXT_DUMMY,
    "ST": _TEXT_DUMMY,
    "TM": b"000000",
    "UC": _TEXT_DUMMY,
    "UR": b"urn:medai-lab:removed",
    "UT": _TEXT_DUMMY,
}
TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT", "PN", "AE", "UR", "CS"})


_WIDTH = {"AT": 4, "FD": 8, "FL": 4, "OD": 8, "OF": 4, "OL": 4, "OV": 8, "SL": 4, "SS": 2,
          "SV": 8, "UL": 4, "US": 2, "UV": 8, "OW": 2, "OB": 2, "UN": 2}  # fmt: skip


def dummy(vr: str, length: int) -> bytes:
    """A dummy for ``vr``: a text value, or zeros in whole values of the VR's width."""
    value = DUMMIES.get(vr)
    if value is not None:
        return value + (b" " if len(value) % 2 else b"")
    width = _WIDTH.get(vr, 2)
    return b"\x00" * max(width, length - length % width)


def shift_dates(value: bytes, vr: str, days: int) -> bytes | None:
    """Shift every date in a DA or DT value back by ``days``; ``None`` if it does not parse.

    Multi-valued and range (``a-b``) values are shifted element by element. DT keeps its
    time and offset; only whole days move, so intervals and times of day are preserved.
    """
    text = value.rstrip(b"\x00 ").decode("ascii", "replace")
    if not text:
        return value
    out = []
    for item in text.split("\\"):
        parts = item.split("-") if vr == "DA" else [item]
        shifted = [_shift_one(p.strip(), vr, days) if p.strip() else "" for p in parts]
        if any(s is None for s in shifted):
            return None
        out.append("-".join(s for s in shifted if s is not None))
    result = "\\".join(out).encode("ascii")
    return result + (b" " if len(result) % 2 else b"")


def _shift_one(text: str, vr: str, days: int) -> str | None:
    if vr == "DA" and len(text) == 10 and text[4] == text[7] == ".":
        text = text.replace(".", "")  # ACR-NEMA style YYYY.MM.DD
    digits = len(text) if vr == "DA" else min(len(text), 8)
    head = text[:digits]
    if not head.isdigit() or digits not in (4, 6, 8):
        return None
    padded = head + "0101"[digits - 4 :] if digits < 8 else head
    try:
        day = dt.date(int(padded[:4]), int(padded[4:6]), int(padded[6:8]))
        new = (day - dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None
    return new.rjust(8, "0")[:digits] + text[digits:]


# Free-text patterns that identify whatever the dataset says: dates and long numbers.
_DATE_PATTERNS = (
    rb"(?<!\d)(?:19|20)\d\d[-./]?(?:0[1-9]|1[0-2])[-./]?(?:0[1-9]|[12]\d|3[01])(?!\d)",
    rb"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d\d(?!\d)",
    rb"(?<!\d)\d{6,}(?!\d)",
)


class TextCleaner:
    """Redacts a dataset's own identifying tokens, dates and long numbers from free text."""

    def __init__(self, tokens: list[bytes]) -> None:
        words = sorted({t for t in tokens if len(t) >= 2}, key=len, reverse=True)
        alternatives = [rb"(?<![A-Za-z0-9])" + re.escape(w) + rb"(?![A-Za-z0-9])" for w in words]
        self._pattern = re.compile(b"|".join([*alternatives, *_DATE_PATTERNS]), re.IGNORECASE)

    def clean(self, value: bytes) -> bytes:
        out = self._pattern.sub(b"*", bytes(value))
        return out + (b" " if len(out) % 2 else b"")


_SPLIT = re.compile(rb"[\s^=\\,;:/()\-.]+")


def tokens_of(value: bytes) -> list[bytes]:
    """Words of an identifying value (name components, address parts, IDs)."""
    value = bytes(value).rstrip(b"\x00 ")
    return [t for t in _SPLIT.split(value) if t] + ([value] if value else [])

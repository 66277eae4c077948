"""Retain Safe Private: which private elements PS3.15 Table E.3.10-1 lets us keep, and how.

A private element is identified by its block's creator string, its (odd) group and the
low byte of its element number. Listed elements are kept according to their VR: numbers
and codes as they are, UIDs replaced like any other UID, text cleaned, sequences walked.
Bulk binary values (OB/OW/UN) are removed even when listed, because nobody can check what
a vendor put in them (PS3.15 E.3.10, note 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from medai_lab.deid.codec import Elem
from medai_lab.deid.profile import load_data

_BULK = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OW/OB", ""})
_TEXT = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})


def _action_for(vr: str) -> str:
    if vr in _BULK:
        return "X"
    if vr == "UI":
        return "U"
    if vr in _TEXT:
        return "C"
    return "K"


@dataclass(frozen=True)
class SafePrivate:
    """``(creator, group, element byte) -> (action, VR)`` for the listed safe attributes."""

    rules: dict[tuple[bytes, int, int], tuple[str, str]]

    @classmethod
    def load(cls) -> SafePrivate:
        rules = {}
        for row in load_data("safe_private.json")["attributes"]:
            if row.get("condition"):
                continue  # conditioned rows are not checked, so not kept
            key = (row["creator"].encode("latin-1"), int(row["group"], 16), int(row["element"], 16))
            rules[key] = (_action_for(row["vr"]), row["vr"])
        return cls(rules)

    def select(self, privates: list[Elem]) -> dict[int, str]:
        """Actions for the private elements of one dataset level that may stay."""
        creators: dict[tuple[int, int], bytes] = {}
        for e in privates:
            elem = e.tag & 0xFFFF
            if 0x10 <= elem <= 0xFF and not isinstance(e.value, list):
                creators[(e.tag >> 16, elem)] = bytes(e.value).rstrip(b"\x00 ")
        keep: dict[int, str] = {}
        used: set[tuple[int, int]] = set()
        for e in privates:
            group, elem = e.tag >> 16, e.tag & 0xFFFF
            if elem < 0x1000:
                continue
            block = (group, elem >> 8)
            creator = creators.get(block)
            rule = self.rules.get((creator, group, elem & 0xFF)) if creator else None
            if rule is None or rule[0] == "X":
                continue
            action, vr = rule
            if e.vr == "UN" and vr != "SQ":
                e.vr = vr  # implicit VR file: the table knows the VR
            if (vr == "SQ") != isinstance(e.value, list):
                continue  # the value is not what the table describes
            keep[e.tag] = action
            used.add(block)
        for group, low in used:
            keep[group << 16 | low] = "K"
        return keep

"""Lookups in pydicom's data dictionary, cached: VRs for implicit files, keywords, UIDs."""

from __future__ import annotations

from functools import cache


@cache
def dictionary_vr(tag: int) -> str:
    """The dictionary VR of ``tag`` (first choice of ``US or SS``), ``UN`` if unknown."""
    from pydicom.datadict import dictionary_VR

    if tag >> 16 & 1:
        return "LO" if 0x10 <= (tag & 0xFFFF) <= 0xFF else "UN"  # private creator / data
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    if vr == "OB or OW":
        return "OW"
    return vr.split(" or ")[0]


@cache
def vr_allowed(tag: int, vr: str) -> bool:
    """Whether ``vr`` is one the dictionary allows for ``tag`` (unknown tags allow any)."""
    from pydicom.datadict import dictionary_VR

    if vr == "UN" or tag >> 16 & 1:
        return True
    try:
        allowed = dictionary_VR(tag)
    except KeyError:
        return True
    return vr in allowed.replace(" or ", " ").split()


@cache
def keyword(tag: int) -> str:
    """The attribute keyword of ``tag``, ``""`` when it is not in the dictionary."""
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or ""


@cache
def tag_for(keyword_: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword_)
    if tag is None:
        raise KeyError(keyword_)
    return tag


@cache
def registered_uids() -> frozenset[bytes]:
    """UIDs defined by the standard (SOP classes, transfer syntaxes, ...): never identifying."""
    from pydicom.uid import UID_dictionary

    return frozenset(uid.encode() for uid in UID_dictionary)

"""DICOM encoding tables (PS3.5) shared by the fast header reader and the de-identifier."""

from __future__ import annotations

# Explicit-VR elements with these VRs have a 2-byte reserved field and a 4-byte length.
LONG_VRS: frozenset[bytes] = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
VALID_VRS: frozenset[bytes] = LONG_VRS | frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
# Encapsulated (compressed) syntaxes: the dataset itself is explicit VR little endian.
ENCAPSULATED = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.92",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.100",
        "1.2.840.10008.1.2.4.101",
        "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103",
        "1.2.840.10008.1.2.4.104",
        "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.110",
        "1.2.840.10008.1.2.4.111",
        "1.2.840.10008.1.2.4.112",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.5",
    }
)
EXPLICIT_LE_FAMILY = ENCAPSULATED | {EXPLICIT_LE}

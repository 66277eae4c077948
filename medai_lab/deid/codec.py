"""A byte-level DICOM Part 10 reader and writer that never decodes pixel data.

De-identification only rewrites a few header values, so this keeps every element it does
not touch as a span of the input buffer and copies runs of untouched elements in one piece.
Sequences are parsed to any depth (defined or undefined length, implicit-VR ``UN``
sequences inside explicit files). Anything that does not parse exactly raises
:class:`Malformed` with a short reason; nothing is guessed.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from medai_lab.io.syntax import (
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE_FAMILY,
    IMPLICIT_LE,
    LONG_VRS,
    VALID_VRS,
)

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQ_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
_LONG_STR = frozenset(v.decode() for v in LONG_VRS)
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_MAX_DEPTH = 64


class Malformed(ValueError):
    """The bytes are not a well-formed DICOM file; the message says where and why."""


class Elem:
    """One data element: ``value`` is bytes, a list of items (``SQ``) or raw fragments."""

    __slots__ = ("encapsulated", "span", "tag", "value", "vr")

    def __init__(
        self,
        tag: int,
        vr: str,
        value: bytes | memoryview | list[list[Elem]],
        span: tuple[int, int] | None = None,
        encapsulated: bool = False,
    ) -> None:
        self.tag = tag
        self.vr = vr
        self.value = value
        self.span = span  # (start, end) of header + value in the input, when reusable as is
        self.encapsulated = encapsulated

    def __repr__(self) -> str:
        return f"Elem(({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {self.vr})"


@dataclass
class DicomFile:
    """A parsed Part 10 file: meta elements, dataset elements and how to re-encode them."""

    meta: list[Elem]
    dataset: list[Elem]
    syntax: str
    buffer: bytes = field(repr=False)
    explicit: bool = True
    little: bool = True
    offset: int = 0  # where the dataset starts in ``buffer``


def meta_value(meta: list[Elem], tag: int) -> str:
    for e in meta:
        if e.tag == tag and isinstance(e.value, bytes | memoryview):
            return bytes(e.value).rstrip(b"\x00 ").decode("ascii", "replace")
    return ""


def parse_file(buf: bytes, vr_of: Callable[[int], str]) -> DicomFile:
    """Parse a Part 10 file; ``vr_of`` gives the dictionary VR for implicit-VR elements."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise Malformed("not a DICOM Part 10 file (no DICM prefix)")
    meta, pos = _parse(buf, 132, len(buf), True, True, vr_of, 0, group2_only=True)
    syntax = meta_value(meta, 0x00020010)
    if not syntax:
        raise Malformed("file meta has no TransferSyntaxUID")
    if syntax == DEFLATED_LE:
        try:
            body = zlib.decompress(buf[pos:], -15)
        except zlib.error as exc:
            raise Malformed(f"deflated dataset does not inflate ({exc})") from None
        dataset, _ = _parse(body, 0, len(body), True, True, vr_of, 0)
        return DicomFile(meta, dataset, syntax, body, True, True, 0)
    if syntax in EXPLICIT_LE_FAMILY:
        explicit, little = True, True
    elif syntax == IMPLICIT_LE:
        explicit, little = False, True
    elif syntax == EXPLICIT_BE:
        explicit, little = True, False
    else:
        shown = syntax if _UID.fullmatch(syntax) else "(not a valid UID)"
        raise Malformed(f"unsupported transfer syntax {shown}")
    dataset, _ = _parse(buf, pos, len(buf), explicit, little, vr_of, 0)
    return DicomFile(meta, dataset, syntax, buf, explicit, little, pos)


def _parse(
    buf: bytes,
    pos: int,
    end: int,
    explicit: bool,
    little: bool,
    vr_of: Callable[[int], str],
    depth: int,
    *,
    in_item: bool = False,
    group2_only: bool = False,
    reuse: bool = True,
) -> tuple[list[Elem], int]:
    """Elements from ``pos`` to ``end`` (or to an item delimiter when ``in_item``)."""
    if depth > _MAX_DEPTH:
        raise Malformed("sequences nested deeper than 64 levels")
    bo = "<" if little else ">"
    tag_fmt, u16, u32 = struct.Struct(bo + "HH"), struct.Struct(bo + "H"), struct.Struct(bo + "I")
    out: list[Elem] = []
    last = -1
    while pos < end:
        if pos + 8 > end:
            raise Malformed(f"truncated element header at byte {pos}")
        group, elem = tag_fmt.unpack_from(buf, pos)
        tag = group << 16 | elem
        if group2_only and group != 2:
            break
        if tag == ITEM_END:
            if not in_item:
                raise Malformed(f"item delimiter outside an item at byte {pos}")
            return out, pos + 8
        if tag in (ITEM, SEQ_END):
            raise Malformed(f"unexpected item tag at byte {pos}")
        if tag <= last:
            raise Malformed(f"elements out of order at byte {pos}")
        last = tag
        if explicit:
            vrb = buf[pos + 4 : pos + 6]
            if vrb not in VALID_VRS:
                raise Malformed(f"invalid VR at byte {pos + 4}")
            vr = vrb.decode()
            if vr in _LONG_STR:
                if pos + 12 > end:
                    raise Malformed(f"truncated element header at byte {pos}")
                (length,) = u32.unpack_from(buf, pos + 8)
                start = pos + 12
            else:
                (length,) = u16.unpack_from(buf, pos + 6)
                start = pos + 8
        else:
            vr = vr_of(tag)
            (length,) = u32.unpack_from(buf, pos + 4)
            start = pos + 8
        if length == UNDEFINED:
            if tag == PIXEL_DATA and explicit and vr in ("OB", "OW"):
                stop = _skip_fragments(buf, start, end, tag_fmt, u32)
                span = (pos, stop) if reuse else None
                out.append(Elem(tag, vr, memoryview(buf)[start:stop], span, True))
                pos = stop
                continue
            if vr not in ("SQ", "UN") and explicit:
                raise Malformed(f"undefined length on a {vr} element at byte {pos}")
            # an undefined-length UN is an implicit VR little endian sequence (PS3.5 6.2.2)
            sub_explicit = explicit and vr == "SQ"
            same = reuse and sub_explicit == explicit
            items, stop = _parse_items(
                buf, start, end, None, sub_explicit, little, vr_of, depth, reuse=same
            )
            out.append(Elem(tag, "SQ", items, (pos, stop) if same else None))
            pos = stop
            continue
        stop = start + length
        if stop > end:
            raise Malformed(f"value length runs past the end of the data at byte {pos}")
        if vr == "SQ":
            items, _ = _parse_items(
                buf, start, stop, stop, explicit, little, vr_of, depth, reuse=reuse
            )
            out.append(Elem(tag, vr, items, (pos, stop) if reuse else None))
        elif vr == "UN" and explicit and vr_of(tag) == "SQ":
            # a sequence some writer did not know: implicit VR little endian (PS3.5 6.2.2)
            try:
                items, _ = _parse_items(
                    buf, start, stop, stop, False, True, vr_of, depth, reuse=False
                )
            except Malformed:
                out.append(Elem(tag, vr, memoryview(buf)[start:stop]))  # removed later
            else:
                out.append(Elem(tag, "SQ", items))
        else:
            out.append(Elem(tag, vr, memoryview(buf)[start:stop], (pos, stop) if reuse else None))
        pos = stop
    if in_item:
        raise Malformed("item without its delimiter")
    return out, pos


def _parse_items(
    buf: bytes,
    pos: int,
    end: int,
    stop: int | None,
    explicit: bool,
    little: bool,
    vr_of: Callable[[int], str],
    depth: int,
    *,
    reuse: bool,
) -> tuple[list[list[Elem]], int]:
    """Items of a sequence: until ``stop`` (defined length) or a sequence delimiter."""
    bo = "<" if little else ">"
    tag_fmt, u32 = struct.Struct(bo + "HH"), struct.Struct(bo + "I")
    items: list[list[Elem]] = []
    limit = end if stop is None else stop
    # ``reuse`` is False where the items are encoded differently from the output
    # (implicit-VR sequences inside an explicit file): those are re-encoded, never copied
    while True:
        if stop is not None and pos == stop:
            return items, pos
        if pos + 8 > limit:
            raise Malformed(f"truncated sequence at byte {pos}")
        group, elem = tag_fmt.unpack_from(buf, pos)
        tag = group << 16 | elem
        (length,) = u32.unpack_from(buf, pos + 4)
        if tag == SEQ_END and stop is None:
            return items, pos + 8
        if tag != ITEM:
            raise Malformed(f"expected a sequence item at byte {pos}")
        if length == UNDEFINED:
            elems, pos = _parse(
                buf, pos + 8, limit, explicit, little, vr_of, depth + 1, in_item=True, reuse=reuse
            )
        else:
            if pos + 8 + length > limit:
                raise Malformed(f"item length runs past its sequence at byte {pos}")
            elems, _ = _parse(
                buf, pos + 8, pos + 8 + length, explicit, little, vr_of, depth + 1, reuse=reuse
            )
            pos += 8 + length
        items.append(elems)


def _skip_fragments(
    buf: bytes, pos: int, end: int, tag_fmt: struct.Struct, u32: struct.Struct
) -> int:
    """End of encapsulated pixel data (after its sequence delimiter)."""
    while pos + 8 <= end:
        group, elem = tag_fmt.unpack_from(buf, pos)
        (length,) = u32.unpack_from(buf, pos + 4)
        tag = group << 16 | elem
        if tag == SEQ_END:
            return pos + 8
        if tag != ITEM or length == UNDEFINED or pos + 8 + length > end:
            raise Malformed(f"broken pixel data fragment at byte {pos}")
        pos += 8 + length
    raise Malformed("pixel data fragments without a sequence delimiter")


class Writer:
    """Encodes elements for one transfer syntax, copying untouched spans of ``source``."""

    def __init__(self, source: bytes, explicit: bool, little: bool) -> None:
        self.source = memoryview(source)
        self.explicit = explicit
        bo = "<" if little else ">"
        self.tag_fmt = struct.Struct(bo + "HH")
        self.u16 = struct.Struct(bo + "H")
        self.u32 = struct.Struct(bo + "I")

    def encode(self, elems: list[Elem]) -> tuple[list[bytes | memoryview], int]:
        """Parts to write, in order, and their total length."""
        parts: list[bytes | memoryview] = []
        total = 0
        run_start = run_end = -1
        for e in elems:
            if e.span is not None:
                s, t = e.span
                if s == run_end:
                    run_end = t
                    continue
                if run_end > run_start:
                    parts.append(self.source[run_start:run_end])
                    total += run_end - run_start
                run_start, run_end = s, t
                continue
            if run_end > run_start:
                parts.append(self.source[run_start:run_end])
                total += run_end - run_start
                run_start = run_end = -1
            total += self._encode_one(e, parts)
        if run_end > run_start:
            parts.append(self.source[run_start:run_end])
            total += run_end - run_start
        return parts, total

    def _encode_one(self, e: Elem, parts: list[bytes | memoryview]) -> int:
        group, elem = e.tag >> 16, e.tag & 0xFFFF
        if isinstance(e.value, list):
            body: list[bytes | memoryview] = []
            size = 0
            for item in e.value:
                item_parts, n = self.encode(item)
                body.append(self.tag_fmt.pack(0xFFFE, 0xE000) + self.u32.pack(n))
                body.extend(item_parts)
                size += 8 + n
            head = self._header(group, elem, "SQ", size)
            parts.append(head)
            parts.extend(body)
            return len(head) + size
        value = e.value
        if e.encapsulated:
            head = self._header(group, elem, e.vr, UNDEFINED)
        else:
            if len(value) % 2:
                value = bytes(value) + (b"\x00" if e.vr in ("UI", "OB", "UN") else b" ")
            head = self._header(group, elem, e.vr, len(value))
        parts.append(head)
        parts.append(value)
        return len(head) + len(value)

    def _header(self, group: int, elem: int, vr: str, length: int) -> bytes:
        tag = self.tag_fmt.pack(group, elem)
        if not self.explicit:
            return tag + self.u32.pack(length)
        if vr not in _LONG_STR and length > 0xFFFE:
            vr = "UN"  # a value too long for a 2-byte length can only travel as UN
        if vr in _LONG_STR:
            return tag + vr.encode() + b"\x00\x00" + self.u32.pack(length)
        return tag + vr.encode() + self.u16.pack(length)


def encode_meta(meta: list[Elem]) -> bytes:
    """File meta group with a correct group length (always explicit VR little endian)."""
    writer = Writer(b"", True, True)
    body = [e for e in meta if e.tag != 0x00020000]
    for e in body:
        e.span = None
    parts, n = writer.encode(body)
    length = Elem(0x00020000, "UL", struct.pack("<I", n))
    head, _ = writer.encode([length])
    return b"\x00" * 128 + b"DICM" + b"".join(bytes(p) for p in head + parts)


def write_parts(parsed: DicomFile, meta: bytes, dataset: list[Elem]) -> list[bytes | memoryview]:
    """Everything to write for a file: meta, then the dataset (deflated again if it was)."""
    writer = Writer(parsed.buffer, parsed.explicit, parsed.little)
    parts, _ = writer.encode(dataset)
    if parsed.syntax == DEFLATED_LE:
        # fixed level and settings keep the output byte-identical across runs
        comp = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
        data = b"".join(comp.compress(bytes(p)) for p in parts) + comp.flush()
        if len(data) % 2:
            data += b"\x00"
        return [meta, data]
    return [meta, *parts]


def walk(elems: list[Elem]) -> Iterator[Elem]:
    """Every element at any depth (sequences included), depth first."""
    for e in elems:
        yield e
        if isinstance(e.value, list):
            for item in e.value:
                yield from walk(item)

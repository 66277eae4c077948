"""Byte-mutation fuzzing of the de-identifier: damaged input never crashes it or leaks.

Over a thousand mutants of four small real files (explicit and implicit VR, with and
without sequences) go through ``deidentify_tree`` in one run. Each mutant must come out
either de-identified (and readable by pydicom, without the source's patient name or ID)
or quarantined with a one-line reason; the inputs are never touched. The mutations are
seeded, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import re
import struct
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from medai_lab.deid import Deidentifier, deidentify_tree
from medai_lab.deid.codec import Malformed, parse_file
from medai_lab.deid.dictionary import dictionary_vr

SEED = 20_240_611
SOURCES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm")
MUTANTS_PER_SOURCE = 260  # 4 x 260 = 1040 mutants
# the pixel step (OCR) runs on every mutant that passes the header step: fuzzed as well
PIXELS = "redact"
KEY = b"fuzz-key-" * 4
EXPLICIT_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
EXPLICIT_VRS = sorted(
    EXPLICIT_LONG_VRS
    | {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH"}
    | {"SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
# VR bytes that no valid file holds: lower case, digits, zeros, the item tag's bytes
BAD_VRS = (b"ZZ", b"ob", b"\x00\x00", b"\xff\xff", b"12", b"S ", b"\xfe\xff")
ITEM_TAGS = (0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD)


@dataclass(frozen=True)
class Header:
    """Where one element or item header starts and how its length field is stored."""

    offset: int
    length_at: int  # offset of the length field
    length_size: int  # 2 (explicit short VR) or 4
    vr_at: int | None  # offset of the VR bytes (explicit VR only)


@dataclass(frozen=True)
class Source:
    name: str
    data: bytes
    sop_uid: bytes
    needles: tuple[bytes, ...]  # the source's PatientName and PatientID
    headers: tuple[Header, ...]


def _tags_of(ds: pydicom.Dataset) -> set[int]:
    tags = {int(e.tag) for e in ds.file_meta} if hasattr(ds, "file_meta") else set()
    tags.update(int(e.tag) for e in ds.iterall())
    return tags


def find_headers(data: bytes, ds: pydicom.Dataset) -> list[Header]:
    """Element and item headers of ``data``, found by the tags pydicom read from it."""
    explicit = not ds.file_meta.TransferSyntaxUID.is_implicit_VR
    headers: list[Header] = []
    for tag in sorted(_tags_of(ds) | set(ITEM_TAGS)):
        pattern = re.escape(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
        for match in re.finditer(pattern, data):
            pos = match.start()
            if pos < 132 or pos + 8 > len(data):
                continue
            vr = data[pos + 4 : pos + 6].decode("latin-1")
            item = tag in ITEM_TAGS
            if not item and (explicit or tag >> 16 == 2) and vr in EXPLICIT_VRS:
                if vr in EXPLICIT_LONG_VRS:
                    headers.append(Header(pos, pos + 8, 4, pos + 4))
                else:
                    headers.append(Header(pos, pos + 6, 2, pos + 4))
            elif item or not explicit:
                (length,) = struct.unpack_from("<I", data, pos + 4)
                if length == 0xFFFFFFFF or pos + 8 + length <= len(data):
                    headers.append(Header(pos, pos + 4, 4, None))
    return headers


def load_source(name: str) -> Source:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is missing"
    data = Path(path).read_bytes()
    ds = pydicom.dcmread(path)
    needles = tuple(
        str(ds.get(keyword, "")).strip().encode()
        for keyword in ("PatientName", "PatientID")
        if str(ds.get(keyword, "")).strip()
    )
    assert needles, f"{name} has no patient name or ID to look for"
    return Source(
        name, data, str(ds.SOPInstanceUID).encode(), needles, tuple(find_headers(data, ds))
    )


def unique_instance(source: Source, index: int) -> bytearray:
    """The source with its SOP Instance UID swapped for a same-length one of its own.

    Without this every intact mutant of one source would be a duplicate of the others;
    the length stays the same, so the headers found in the source stay where they are.
    """
    width = len(source.sop_uid) - len(b"2.25.")
    new = b"2.25." + str(10 ** (width - 1) + index).encode()
    assert len(new) == len(source.sop_uid)
    return bytearray(source.data.replace(source.sop_uid, new))


# ---- mutations: each takes the bytes, the source and the generator, and edits in place ---


def flip_bytes(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 9))):
        buf[pos] ^= int(rng.integers(1, 256))


def truncate(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    del buf[int(rng.integers(0, len(buf))) :]


def insert_run(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    pos = int(rng.integers(0, len(buf) + 1))
    buf[pos:pos] = rng.bytes(int(rng.integers(1, 33)))


def delete_run(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    pos = int(rng.integers(0, len(buf)))
    del buf[pos : pos + int(rng.integers(1, 33))]


def _pick(headers: list[Header], rng: np.random.Generator) -> Header | None:
    return headers[int(rng.integers(0, len(headers)))] if headers else None


def corrupt_length(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    # after an earlier truncation some headers lie past the end: aim only at those left
    header = _pick([h for h in source.headers if h.length_at + h.length_size <= len(buf)], rng)
    if header is None:
        return flip_bytes(buf, source, rng)
    fmt = "<H" if header.length_size == 2 else "<I"
    limit = 0xFFFF if header.length_size == 2 else 0xFFFFFFFF
    (old,) = struct.unpack_from(fmt, buf, header.length_at)
    choices = [0, 1, old + 1, old - 1, old + 2, old - 2, old * 2, limit, limit - 1]
    choices.append(int(rng.integers(0, limit, endpoint=True)))
    new = choices[int(rng.integers(0, len(choices)))]
    struct.pack_into(fmt, buf, header.length_at, min(max(new, 0), limit))


def change_vr(buf: bytearray, source: Source, rng: np.random.Generator) -> None:
    explicit = [h for h in source.headers if h.vr_at is not None and h.vr_at + 2 <= len(buf)]
    header = _pick(explicit, rng)
    if header is None or header.vr_at is None:
        return flip_bytes(buf, source, rng)
    vrs = [v.encode() for v in EXPLICIT_VRS] + list(BAD_VRS)
    buf[header.vr_at : header.vr_at + 2] = vrs[int(rng.integers(0, len(vrs)))]


MUTATIONS: tuple[Callable[[bytearray, Source, np.random.Generator], None], ...] = (
    flip_bytes,
    truncate,
    insert_run,
    delete_run,
    corrupt_length,
    change_vr,
)


def mutants(
    sources: list[Source], per_source: int, seed: int
) -> Iterator[tuple[str, bytes, Source]]:
    """``(file name, bytes, source)`` for every mutant; the same seed gives the same set."""
    rng = np.random.default_rng(seed)
    for number, source in enumerate(sources):
        for i in range(per_source):
            mutation = MUTATIONS[i % len(MUTATIONS)]
            buf = unique_instance(source, number * per_source + i)
            mutation(buf, source, rng)
            if rng.random() < 0.25:  # a second, different damage now and then
                MUTATIONS[int(rng.integers(0, len(MUTATIONS)))](buf, source, rng)
            stem = Path(source.name).stem
            yield f"{stem}_{i:04d}_{mutation.__name__}.dcm", bytes(buf), source


def run_tree(src: Path, out: Path, **kwargs) -> list[dict[str, str]]:
    """deidentify_tree, then the audit rows with "input" mapped back to the file name
    (through the input linkage, kept beside OUT) and "pseudonym" holding the audit's name."""
    link = out.with_name(out.name + "-inputs.csv")
    deidentify_tree(src, out, key=KEY, input_linkage=link, progress=False, **kwargs)
    with link.open(newline="", encoding="utf-8") as fh:
        name_of = {r["input"]: r["input_path"] for r in csv.DictReader(fh)}
    with (out / "deid_audit.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["pseudonym"], row["input"] = row["input"], name_of[row["input"]]
    return rows


def hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_fully(path: Path) -> None:
    """Read with pydicom and touch every value at every depth (raises on failure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        for elem in ds.file_meta:
            _ = elem.value
        for elem in ds.iterall():
            _ = elem.value


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    return [load_source(name) for name in SOURCES]


def test_mutants_never_crash_and_never_leak(sources: list[Source], tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    origin: dict[str, Source] = {}
    for name, data, source in mutants(sources, MUTANTS_PER_SOURCE, SEED):
        (src / name).write_bytes(data)
        origin[name] = source
    assert len(origin) >= 1000
    before = hash_tree(src)

    start = time.perf_counter()
    rows = run_tree(src, out, workers=2, pixels=PIXELS)
    elapsed = time.perf_counter() - start

    assert hash_tree(src) == before, "the inputs were modified"
    assert sorted(r["input"] for r in rows) == sorted(origin), "each mutant once in the audit"

    problems: list[str] = []
    statuses = {"deidentified": 0, "quarantined": 0}
    for row in rows:
        name, status = row["input"], row["status"]
        statuses[status] = statuses.get(status, 0) + 1
        if status == "deidentified":
            problems.extend(check_deidentified(out, row, origin[name]))
        elif status == "quarantined":
            problems.extend(check_quarantined(src, out, row))
        else:
            problems.append(f"{name}: unknown status {status!r}")
    audit = (out / "deid_audit.csv").read_bytes()
    problems.extend(
        f"deid_audit.csv quotes {n!r}" for s in sources for n in s.needles if n in audit
    )
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
    # the mutations must leave a real mix, or the test checks only one branch
    assert statuses["deidentified"] >= 100 and statuses["quarantined"] >= 100, statuses
    print(f"\n{len(rows)} mutants in {elapsed:.1f} s (workers=2): {statuses}")


def check_deidentified(out: Path, row: dict[str, str], source: Source) -> list[str]:
    name, target = row["input"], out / row["output"]
    if not row["output"] or not target.is_file():
        return [f"{name}: deidentified but no output file {row['output']!r}"]
    problems = []
    try:
        read_fully(target)
    except Exception as exc:  # any exception at all is the finding
        problems.append(f"{name}: output does not re-read with pydicom: {exc!r}"[:300])
    data = target.read_bytes()
    problems.extend(f"{name}: output holds {n!r}" for n in source.needles if n in data)
    return problems


def check_quarantined(src: Path, out: Path, row: dict[str, str]) -> list[str]:
    name, pseudonym = row["input"], row["pseudonym"]
    copy = out / "quarantine" / f"{pseudonym}.dcm"
    reason_file = out / "quarantine" / f"{pseudonym}.reason.txt"
    if row["output"] != f"quarantine/{pseudonym}.dcm" or not copy.is_file():
        return [f"{name}: quarantined but no copy at {row['output']!r}"]
    if copy.read_bytes() != (src / name).read_bytes():
        return [f"{name}: the quarantined copy differs from the input"]
    if not reason_file.is_file():
        return [f"{name}: no {reason_file.name}"]
    reason = reason_file.read_text(encoding="utf-8")
    lines = reason.splitlines()
    if len(lines) != 1 or not lines[0].strip():
        return [f"{name}: the reason is not one line: {reason!r}"]
    if lines[0] != row["reason"]:
        return [f"{name}: audit reason {row['reason']!r} differs from {lines[0]!r}"]
    return []


@pytest.mark.parametrize("damage", [b"\n", b"\r", b"\r\n"])
def test_reason_is_one_line_when_the_damaged_value_holds_a_line_break(
    sources: list[Source], tmp_path: Path, damage: bytes
) -> None:
    """A reason that quotes a damaged value (here the transfer syntax) stays one line."""
    source = sources[0]
    syntax = pydicom.dcmread(get_testdata_file(source.name)).file_meta.TransferSyntaxUID
    value = str(syntax).encode()
    assert source.data.count(value + b"\x00") == 1
    broken = value[:4] + damage + value[4 + len(damage) :]
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dcm").write_bytes(source.data.replace(value + b"\x00", broken + b"\x00"))
    rows = run_tree(src, tmp_path / "out", pixels=PIXELS)
    assert len(rows) == 1, f"the audit does not hold one row for one input: {rows}"
    row = rows[0]
    assert row["input"] == "a.dcm" and row["status"] == "quarantined"
    assert not check_quarantined(src, tmp_path / "out", row)
    assert "\n" not in row["reason"] and "\r" not in row["reason"]


def test_audit_never_quotes_patient_data(sources: list[Source], tmp_path: Path) -> None:
    """A damaged length can make one meta value swallow the data set that follows.

    The audit (which travels with the output) must not quote it: here the transfer syntax
    length is stretched over the patient's name.
    """
    source = sources[0]
    data = bytearray(source.data)
    header = next(
        h for h in source.headers if source.data[h.offset : h.offset + 4] == b"\x02\x00\x10\x00"
    )
    name_at = source.data.find(source.needles[0])
    assert header.length_size == 2 and name_at > header.offset
    length = name_at + len(source.needles[0]) + 8 - (header.length_at + 2)
    struct.pack_into("<H", data, header.length_at, length + length % 2)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.dcm").write_bytes(bytes(data))
    (row,) = run_tree(src, out, pixels=PIXELS)
    audit = (out / "deid_audit.csv").read_bytes()
    assert b",quarantined," in audit
    for needle in source.needles:
        assert needle not in audit, f"deid_audit.csv quotes {needle!r}"
        reason = out / "quarantine" / f"{row['pseudonym']}.reason.txt"
        assert needle not in reason.read_bytes()


NUMBER_VRS = ("FD", "FL", "SL", "UL", "SS", "US", "AT")


def test_value_with_a_number_vr_still_gives_a_readable_output(
    sources: list[Source], tmp_path: Path
) -> None:
    """Text and time attributes whose explicit VR was damaged into a binary number VR.

    Whatever the de-identifier does with them (remove, dummy, quarantine), the output must
    stay a file pydicom can read: a dummy must fit the VR it is written with.
    """
    source = sources[0]
    ds = pydicom.dcmread(get_testdata_file(source.name))
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    made: list[str] = []
    for keyword in ("InstitutionName", "ContentTime", "SeriesTime", "StudyTime", "Manufacturer"):
        elem = ds.data_element(keyword)
        assert elem is not None, keyword
        pattern = struct.pack("<HH", elem.tag.group, elem.tag.elem) + elem.VR.encode()
        assert source.data.count(pattern) == 1, keyword
        at = source.data.index(pattern) + 4
        for vr in NUMBER_VRS:
            buf = unique_instance(source, len(made))
            buf[at : at + 2] = vr.encode()
            name = f"{keyword}_{vr}.dcm"
            (src / name).write_bytes(bytes(buf))
            made.append(name)
    rows = run_tree(src, out, pixels=PIXELS)
    assert sorted(r["input"] for r in rows) == sorted(made)
    problems = []
    for row in rows:
        if row["status"] == "deidentified":
            problems.extend(check_deidentified(out, row, source))
        else:
            problems.extend(check_quarantined(src, out, row))
    assert not problems, "\n".join(problems)


def test_mutants_are_reproducible(sources: list[Source]) -> None:
    """The same seed gives the same mutants (a failure above can be replayed)."""
    first = [(n, hashlib.sha256(d).digest()) for n, d, _ in mutants(sources, 12, SEED)]
    again = [(n, hashlib.sha256(d).digest()) for n, d, _ in mutants(sources, 12, SEED)]
    other = [(n, hashlib.sha256(d).digest()) for n, d, _ in mutants(sources, 12, SEED + 1)]
    assert first == again
    assert first != other


def test_headers_found_in_every_source(sources: list[Source]) -> None:
    """The length and VR mutations need element headers to aim at."""
    for source in sources:
        assert len(source.headers) >= 20, source.name
        assert any(h.vr_at is not None for h in source.headers), source.name


# ---- property test on the parser ----------------------------------------------------------

_PREFIX = b"\x00" * 128 + b"DICM"


def _real_prefix() -> bytes:
    path = get_testdata_file("rtplan.dcm")
    assert path is not None
    return Path(path).read_bytes()


REAL = _real_prefix()


_DAMAGED = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=600).map(lambda b: _PREFIX + b),
    st.tuples(st.integers(132, len(REAL)), st.binary(max_size=64)).map(
        lambda t: REAL[: t[0]] + t[1]
    ),
    st.tuples(st.integers(132, len(REAL) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda t: REAL[: t[0]] + t[1] + REAL[t[0] + len(t[1]) :]
    ),
)


def _parse_or_malformed(buf: bytes) -> None:
    with contextlib.suppress(Malformed):
        parse_file(buf, dictionary_vr)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_DAMAGED)
def test_parse_file_raises_only_malformed(buf: bytes) -> None:
    """Any bytes at all: the parser returns or raises Malformed, nothing else."""
    _parse_or_malformed(buf)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_DAMAGED)
def test_process_returns_an_outcome_for_any_bytes(deidentifier: Deidentifier, buf: bytes) -> None:
    """The engine never raises: it de-identifies or gives a reason."""
    outcome = deidentifier.process(buf)
    if outcome.parts is None:
        assert outcome.reason.strip()
    else:
        assert b"".join(bytes(p) for p in outcome.parts)[128:132] == b"DICM"


@pytest.fixture(scope="module")
def deidentifier() -> Deidentifier:
    return Deidentifier(KEY, pixels="off")

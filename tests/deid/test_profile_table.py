"""Every concrete row of PS3.15 Table E.1-1, under the Basic Profile and each option.

A dataset carries a recognisable value in each listed attribute, at the top level and again
inside a nested sequence. The test reads the action from the shipped table itself and checks
the outcome against what the action code means (compound codes accept any of their choices).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from importlib import resources

import pydicom
import pytest
from helpers import part10_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medai_lab.deid import Deidentifier, option_names

KEY = b"table-test-key-0123456789abcdef!"
NAME = "Doe^Jane"
CONTAINER = 0x00400260  # Performed Protocol Code Sequence: not in the table, so kept and walked
OWN = {0x00100010, 0x00100020}
SET_BY_US = {
    0x00120062,
    0x00120063,
    0x00120064,
    0x00280303,
    0x00080016,
}  # PatientName / PatientID become keyed pseudonyms


def _load(name: str):
    path = resources.files("medai_lab.deid").joinpath("data").joinpath(name)
    return json.loads(path.read_text(encoding="utf-8"))


ROWS = [
    r
    for r in _load("confidentiality_profile_attributes.json")
    if "X" not in r["tag"][1:10] and "G" not in r["tag"] and r["tag"][1:5] not in ("0000", "0002")
]
COLUMNS = {o["name"]: o["column"] for o in _load("options.json")["options"]}


def _tag(row: dict) -> int:
    return int(row["tag"][1:5] + row["tag"][6:10], 16)


def _vr(tag: int) -> str:
    vr = dictionary_VR(tag)
    return "OW" if vr == "OB or OW" else vr.split(" or ")[0]


def _value(tag: int, vr: str):
    """A value that names the attribute and carries the patient's surname where text allows."""
    text = f"DOE V{tag:08X}"
    return {
        "AE": text,
        "AS": "042Y",
        "CS": text,
        "DA": "20010203",
        "DS": "12.5",
        "DT": "20010203040506",
        "IS": "42",
        "LO": text,
        "LT": text,
        "PN": f"Doe^V{tag:08X}",
        "SH": text,
        "ST": text,
        "TM": "040506",
        "UC": text,
        "UI": f"1.2.826.0.1.3680043.10.1.{tag}",
        "UR": f"http://doe.example/V{tag:08X}",
        "UT": text,
        "US": 7,
        "SS": 7,
        "UL": 7,
        "SL": 7,
        "FL": 7.0,
        "FD": 7.0,
        "AT": 0x00100010,
    }.get(vr, b"DOE\x01\x02\x03" + tag.to_bytes(4, "big"))


def _fill(ds: Dataset) -> None:
    for row in ROWS:
        tag = _tag(row)
        vr = _vr(tag)
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = "DOE1"
            item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.2.{tag}"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, _value(tag, vr))


def _source() -> bytes:
    ds = Dataset()
    _fill(ds)
    inner = Dataset()
    _fill(inner)
    ds.add_new(CONTAINER, "SQ", Sequence([inner]))
    ds.PatientName = NAME
    ds.PatientID = "PID-DOE-1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.3.1"
    ds.Modality = "CT"
    return part10_bytes(ds, SourceApplicationEntityTitle="DOE_AE")


@pytest.fixture(scope="module")
def source() -> tuple[bytes, Dataset]:
    data = _source()
    return data, pydicom.dcmread(io.BytesIO(data))


def _run(data: bytes, options: tuple[str, ...]) -> Dataset:
    outcome = Deidentifier(KEY, options, pixels="off").process(data)
    assert outcome.parts is not None, outcome.reason
    return pydicom.dcmread(io.BytesIO(b"".join(bytes(p) for p in outcome.parts)))


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, Sequence):
        return "".join(_text(e.value) for item in value for e in item.iterall())
    return str(value)


def _days(before: str, after: str) -> int:
    parse = "%Y%m%d"
    return (dt.datetime.strptime(before[:8], parse) - dt.datetime.strptime(after[:8], parse)).days


def _check(code: str, vr: str, before, elem, tag: int) -> str:
    """'' when ``elem`` (or its absence) is what ``code`` allows, else what is wrong."""
    present = elem is not None
    value = elem.value if present else None
    empty = present and (value in (None, "", b"") or (vr == "SQ" and len(value) == 0))
    original = _text(before)
    leaked = present and not empty and (original in _text(value) or "DOE" in _text(value).upper())
    allowed = code.split("/")
    if code == "K" and vr == "SQ":  # kept, but every item is still de-identified
        return "" if present and len(value) == len(before) else f"not kept: {value!r}"
    if code == "K":
        return "" if present and _text(value) == original else f"not kept: {value!r}"
    if code == "C":
        if not present:
            return "removed instead of cleaned"
        if vr in ("DA", "DT"):
            return "" if 0 < _days(original, _text(value)) <= 3650 else f"not shifted: {value!r}"
        if vr in ("TM", "SQ") or vr in ("OB", "OW", "US", "FL", "FD", "DS", "IS"):
            return ""
        return "" if "DOE" not in _text(value).upper() else f"not cleaned: {value!r}"
    ok = []
    if "X" in allowed:
        ok.append(not present)
    if "Z" in allowed:
        ok.append(present and (empty or not leaked))
    if "D" in allowed:
        ok.append(present and not empty and not leaked)
    if "U*" in allowed or "U" in allowed:
        if vr == "UI":
            ok.append(present and _text(value).startswith("2.25.") and original not in _text(value))
        else:  # a sequence of references: kept, every UID inside replaced
            ok.append(present and "1.2.826.0.1.3680043.10.2" not in _text(value))
    if tag in OWN:
        return "" if present and str(value).startswith("MEDAI-") else f"no pseudonym: {value!r}"
    return "" if any(ok) else f"{'present' if present else 'absent'}: {value!r}"


def _expected(row: dict, option: str | None) -> str:
    if option and COLUMNS[option] in row:
        return row[COLUMNS[option]]
    return row["basicProfile"]


@pytest.mark.parametrize("option", [None, *option_names()])
def test_every_row_gets_its_action(source: tuple[bytes, Dataset], option: str | None) -> None:
    data, before = source
    after = _run(data, (option,) if option else ())
    nested_before = before[CONTAINER].value[0]
    nested_after = after[CONTAINER].value[0]
    failures = []
    for row in ROWS:
        tag = _tag(row)
        vr = _vr(tag)
        code = _expected(row, option)
        for where, b, a in (("top", before, after), ("nested", nested_before, nested_after)):
            if tag in OWN and where == "nested":
                continue
            if tag in SET_BY_US and where == "top":
                continue  # set by the de-identifier itself (checked below)
            if tag not in b:
                failures.append(f"{row['tag']} missing from the input")
                continue
            problem = _check(code, vr, b[tag].value, a.get(tag), tag)
            if problem:
                failures.append(f"{row['tag']} {row['name']} [{code}] {where}: {problem}")
    assert not failures, f"{len(failures)} rows wrong:\n" + "\n".join(failures[:40])


def test_identity_attributes_and_meta(source: tuple[bytes, Dataset]) -> None:
    data, _ = source
    after = _run(data, ("retain-modified-dates", "clean-descriptors"))
    assert after.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113105"]
    assert all(i.CodingSchemeDesignator == "DCM" for i in after.DeidentificationMethodCodeSequence)
    assert after.LongitudinalTemporalInformationModified == "MODIFIED"
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in after.file_meta
    parts = Deidentifier(KEY, pixels="off").process(data).parts
    assert b"DOE_AE" not in b"".join(bytes(p) for p in parts)
    assert _run(data, ()).LongitudinalTemporalInformationModified == "REMOVED"
    full = _run(data, ("retain-full-dates",))
    assert full.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_uids_are_consistent_at_every_depth(source: tuple[bytes, Dataset]) -> None:
    data, before = source
    after = _run(data, ())
    again = _run(data, ())
    other = Deidentifier(b"another-key-0123456789abcdef!!!!", pixels="off").process(data)
    other_ds = pydicom.dcmread(io.BytesIO(b"".join(bytes(p) for p in other.parts)))
    for tag in (0x0020000D, 0x00200052, 0x00081155):
        if tag not in before:
            continue
        top, nested = after[tag].value, after[CONTAINER].value[0][tag].value
        assert top == nested == again[tag].value, "same UID, same replacement everywhere"
        assert top.startswith("2.25.") and len(top) <= 64
        assert other_ds[tag].value != top, "another key gives other UIDs"


def test_modified_dates_shift_every_date_by_one_per_patient_offset(source) -> None:
    data, before = source
    after = _run(data, ("retain-modified-dates",))
    shifts = set()
    for e in before:
        if e.VR in ("DA", "DT") and e.tag in after and after[e.tag].value:
            shifts.add(_days(str(e.value), str(after[e.tag].value)))
        if e.VR == "TM" and e.tag in after:
            assert after[e.tag].value == e.value, "whole-day shifts leave times of day alone"
    assert len(shifts) == 1 and 0 < shifts.pop() <= 3650


def test_options_are_validated() -> None:
    from medai_lab.deid import OptionError

    with pytest.raises(OptionError, match="unknown"):
        Deidentifier(KEY, ("retain-everything",))
    with pytest.raises(OptionError, match="exclude each other"):
        Deidentifier(KEY, ("retain-full-dates", "retain-modified-dates"))
    assert Deidentifier(KEY, ("Retain_UIDs",)).profile.options == ("retain-uids",)

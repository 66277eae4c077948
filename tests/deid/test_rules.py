"""Tag patterns, private groups, attributes the table does not list, burned-in text."""

from __future__ import annotations

import io

import pydicom
import pytest
from helpers import part10_bytes
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medai_lab.deid import Deidentifier
from medai_lab.deid.values import TextCleaner, shift_dates

KEY = b"rules-test-key-0123456789abcdef!"


def _file(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.SOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9.1"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-77"
    return part10_bytes(ds, syntax)


def _run(data: bytes, *options: str, allow: bool = False) -> Dataset:
    outcome = Deidentifier(KEY, options, allow_burned_in=allow, pixels="off").process(data)
    assert outcome.parts is not None, outcome.reason
    return pydicom.dcmread(io.BytesIO(b"".join(bytes(p) for p in outcome.parts)))


def _graphics() -> Dataset:
    ds = Dataset()
    ds.add_new(0x50000010, "US", 3)  # Number of Points (curve group)
    ds.add_new(0x50003000, "OB", b"\x01\x02\x03\x04")  # Curve Data
    ds.add_new(0x60020010, "US", 4)  # Overlay Rows
    ds.add_new(0x60023000, "OW", b"\xff\x00" * 4)  # Overlay Data
    ds.add_new(0x60024000, "LT", "drawn by Doe")  # Overlay Comments
    return ds


def test_curves_and_overlays_removed_by_default() -> None:
    out = _run(_file(_graphics()))
    for tag in (0x50003000, 0x60023000, 0x60024000):
        assert tag not in out


def test_clean_graphics_keeps_overlays_and_cleans_their_text() -> None:
    out = _run(_file(_graphics()), "clean-graphics")
    assert out[0x60023000].value == b"\xff\x00" * 4
    assert out[0x50003000].value == b"\x01\x02\x03\x04"
    assert "Doe" not in str(out[0x60024000].value)


def _private() -> Dataset:
    ds = Dataset()
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x23, "FL", 1.5)  # listed as safe in Table E.3.10-1
    block.add_new(0x77, "LO", "Doe secret")  # not listed
    other = ds.private_block(0x0029, "ACME PRIVATE", create=True)
    other.add_new(0x10, "LO", "Doe")
    return ds


def test_private_groups_removed_unless_retain_safe_private() -> None:
    data = _file(_private())
    out = _run(data)
    assert not any(e.tag.is_private for e in out)
    kept = _run(data, "retain-safe-private")
    block = kept.private_block(0x0019, "GEMS_ACQU_01")
    assert block[0x23].value == pytest.approx(1.5)
    assert 0x00191077 not in kept
    assert not any(e.tag.group == 0x0029 for e in kept)


def _unlisted(vr: str) -> int:
    """The first current attribute of ``vr`` that Table E.1-1 does not list."""
    from pydicom.datadict import DicomDictionary

    from medai_lab.deid.profile import load_data, table

    listed = {r["id"].upper() for r in table()}
    safe = set(load_data("rules.json")["safe_keywords"])
    for tag, (dvr, _, _, retired, kw) in sorted(DicomDictionary.items()):
        unlisted = f"{tag:08X}" not in listed and kw not in safe
        if dvr == vr and not retired and unlisted and tag >> 16 > 0x0008:
            return tag
    raise LookupError(vr)


def test_attributes_missing_from_the_table_follow_the_default_rules() -> None:
    from pydicom.datadict import DicomDictionary

    ds = Dataset()
    ds.ConvolutionKernel = "B30f"  # technical text on the safe list
    uid, date, dtime, time = _unlisted("UI"), _unlisted("DA"), _unlisted("DT"), _unlisted("TM")
    texts = [_unlisted(vr) for vr in ("PN", "LO", "SH", "ST", "LT", "UT")]
    ds.add_new(uid, "UI", "1.2.826.0.1.3680043.10.9.5")
    ds.add_new(date, "DA", "20200101")
    ds.add_new(dtime, "DT", "20200101120000")
    ds.add_new(time, "TM", "120000")
    for tag in texts:
        ds.add_new(tag, DicomDictionary[tag][0], "Doe")
    unknown = next(t for t in range(0x00470001, 0x00470100) if t not in DicomDictionary)
    ds.add_new(unknown, "UN", b"DOE\x00")  # newer than any dictionary: VR UN
    data = _file(ds)
    out = _run(data)
    assert out.ConvolutionKernel == "B30f"
    assert str(out[uid].value).startswith("2.25.")
    for tag in (*texts, date, dtime, time, unknown):
        assert tag not in out, f"{tag:08X} should be removed"
    parts = Deidentifier(KEY, pixels="off").process(data).parts
    assert b"Doe" not in b"".join(bytes(p) for p in parts)
    shifted = _run(data, "retain-modified-dates")
    assert shifted[date].value < "20200101" and shifted[time].value == "120000"
    assert _run(data, "retain-full-dates")[dtime].value == "20200101120000"
    assert _run(data, "retain-uids")[uid].value == "1.2.826.0.1.3680043.10.9.5"


def test_a_vr_the_dictionary_does_not_allow_is_not_trusted() -> None:
    ds = Dataset()
    ds.add_new(0x00280010, "LO", "Doe")  # Rows must be US
    out = _run(_file(ds))
    assert 0x00280010 not in out


def test_implicit_vr_files_are_handled_with_dictionary_vrs() -> None:
    ds = _graphics()
    ds.StudyDate = "20200202"
    ds.InstitutionName = "Doe Hospital"
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.9.7"
    out = _run(_file(ds, ImplicitVRLittleEndian))
    assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert out.StudyDate == ""
    assert "Doe" not in str(out.get("InstitutionName", ""))
    assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID.startswith("2.25.")


@pytest.mark.parametrize(
    ("modality", "sop_class", "burned"),
    [
        ("US", "1.2.840.10008.5.1.4.1.1.6.1", None),
        ("OT", "1.2.840.10008.5.1.4.1.1.7", None),
        ("CT", "1.2.840.10008.5.1.4.1.1.2", "YES"),
    ],
)
def test_likely_burned_in_text_is_quarantined_unless_allowed(modality, sop_class, burned) -> None:
    ds = Dataset()
    ds.Modality = modality
    ds.SOPClassUID = sop_class
    if burned:
        ds.BurnedInAnnotation = burned
    data = _file(ds)
    outcome = Deidentifier(KEY, pixels="off").process(data)
    assert outcome.parts is None and outcome.reason.startswith("burned-in")
    assert _run(data, allow=True).Modality == modality


def test_date_shift_values() -> None:
    assert shift_dates(b"20200301", "DA", 1) == b"20200229"
    assert shift_dates(b"20200301\\20200302", "DA", 1) == b"20200229\\20200301 "
    assert shift_dates(b"20200301-20200310", "DA", 1) == b"20200229-20200309 "
    assert shift_dates(b"20200301101010.5+0100", "DT", 1) == b"20200229101010.5+0100 "
    assert shift_dates(b"2020", "DT", 400) == b"2018"
    assert shift_dates(b"notadate", "DA", 1) is None


def test_text_cleaner_redacts_identity_dates_and_numbers() -> None:
    cleaner = TextCleaner([b"Doe", b"Jane", b"PID-77"])
    out = cleaner.clean(b"CT for JANE doe (PID-77) on 2021-03-04, MRN 12345678, slice 5 mm")
    text = out.decode()
    for word in ("JANE", "doe", "PID-77", "2021-03-04", "12345678"):
        assert word not in text
    assert "slice 5 mm" in text and "Janet" in cleaner.clean(b"Janet").decode()

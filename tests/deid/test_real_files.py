"""De-identification of real DICOM: the Basel CT series, pydicom's and deid-data's files.

The values to look for are read from the inputs with pydicom at test time and searched in
the raw bytes of the outputs. A long value (8 characters or more) is searched in the whole
file; a short one only outside the pixel data and only in context (as a whole element
value or a whole token), because a few digits occur by chance in compressed pixel data
and inside new ``2.25.<number>`` UIDs.
The pixel data itself is checked separately: it must be byte-identical to the input's.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import re
import shutil
import struct
import subprocess
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID_dictionary
from testsupport import missing_component

from medai_lab.deid import DeidReport, deidentify_tree
from medai_lab.io import load_series

# pydicom warns about odd values in the (real) inputs as it reads them; not our subject
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

KEY = b"real-files-test-key-0123456789ab"
OTHER_KEY = b"another-key-for-the-same-files!!"
LONG = 8  # values at least this long are searched everywhere, shorter ones in context
# Values the de-identifier itself writes as dummies: an input value equal to one of these
# cannot be told apart from the dummy, so it is not a needle.
PLACEHOLDERS = frozenset({"", "ANONYMOUS", "19000101", "19000101000000", "000000", "0"})
# UI attributes that name a kind of thing (a class, a syntax, a coding scheme), not an
# instance: they identify nobody and are kept
NOT_INSTANCE_UIDS = frozenset(
    {
        "TransferSyntaxUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "ContextGroupExtensionCreatorUID",
        "ReferencedTransferSyntaxUIDInFile",
    }
)
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)
# pydicom's own files (pydicom) and those of pydicom-data: name -> what the file brings
PYDICOM_FILES = {
    "CT_small.dcm": "explicit VR little endian CT",
    "MR_small.dcm": "explicit VR little endian MR",
    "MR_small_bigendian.dcm": "explicit VR big endian",
    "MR_small_implicit.dcm": "implicit VR little endian",
    "rtplan.dcm": "implicit VR, nested sequences",
    "rtstruct.dcm": "a bare data set without the Part 10 header",
    "rtdose_rle.dcm": "RLE, a sequence stored as UN with a defined length",
    "rtdose_expb.dcm": "big endian RT dose",
    "image_dfl.dcm": "deflated explicit VR little endian",
    "JPGExtended.dcm": "JPEG extended (lossy) pixel data",
    "JPEG2000.dcm": "JPEG 2000 pixel data, undefined-length sequences",
    "reportsi.dcm": "structured report, undefined-length sequences",
    "test-SR.dcm": "structured report with names in its content",
    "liver_1frame.dcm": "segmentation, undefined-length sequences",
}
PYDICOM_DATA_FILES = {
    "693_J2KR.dcm": "JPEG 2000 CT (CQ500)",
    "eCT_Supplemental.dcm": "enhanced CT, functional groups",
    "MR-SIEMENS-DICOM-WithOverlays.dcm": "Siemens MR with overlays and private groups",
    "explicit_VR-UN.dcm": "elements stored as UN in an explicit file",
    "gdcm-US-ALOKA-16_big.dcm": "big endian ultrasound",
    "emri_small_big_endian.dcm": "big endian MR, several frames",
    "RG1_UNCI.dcm": "uncompressed CR",
}
DEID_DATA_GLOBS = (
    "humans/ctbrain*.dcm",
    "dicom-cookies/*.dcm",
    "ultrasounds/*.dcm",
    "animals/cat.dcm",
)


# ---- helpers: reading inputs and outputs ---------------------------------------------------


# Basel leftovers listed in shared/data/README.md that are short identifiers
SHORT_IDENTIFIERS = (
    "StationName",
    "DeviceSerialNumber",
    "IssuerOfPatientID",
    "RequestingPhysician",
    "PerformedProcedureStepID",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
)


def dcmread_quiet(path: Path, **kwargs: object) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)


def is_part10(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(132)
    return head[128:132] == b"DICM"


def all_elements(ds: Dataset) -> Iterator[DataElement]:
    """File meta and data set elements at every depth."""
    yield from getattr(ds, "file_meta", Dataset())
    yield from ds.iterall()


def texts(elem: DataElement) -> list[str]:
    """The value of a text-like element as strings (one per value of a multi-value)."""
    if elem.VR == "SQ" or elem.value is None or isinstance(elem.value, bytes | bytearray):
        return []
    values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
    return [str(v).strip() for v in values if str(v).strip()]


def is_instance_uid(elem: DataElement) -> bool:
    keyword = elem.keyword or ""
    return (
        elem.VR == "UI"
        and not keyword.endswith(("ClassUID", "ClassUIDInFile"))
        and keyword not in NOT_INSTANCE_UIDS
    )


def instance_uids(ds: Dataset) -> set[str]:
    """Every UID at any depth that names an instance (not registered, not a class)."""
    found = set()
    for elem in all_elements(ds):
        if is_instance_uid(elem):
            found.update(uid for uid in texts(elem) if uid not in UID_dictionary)
    return found


def header_bytes(raw: bytes, pixel: bytes | None) -> bytes:
    """The bytes of a file with the deflated part inflated and the pixel data cut out."""
    meta_end = 144 + int.from_bytes(raw[140:144], "little")  # group length value
    if pydicom.uid.DeflatedExplicitVRLittleEndian.encode() in raw[:meta_end]:
        raw = raw[:meta_end] + zlib.decompress(raw[meta_end:], -15)
    if pixel:
        at = raw.rfind(pixel)
        if at >= 0:
            raw = raw[:at] + raw[at + len(pixel) :]
    return raw


def _encodings(value: str) -> set[bytes]:
    out = {value.encode("utf-8")}
    with contextlib.suppress(UnicodeEncodeError):
        out.add(value.encode("latin-1"))
    return out


def as_element_value(needle: bytes) -> bytes:
    """A regex for ``needle`` as a whole element value: length field, value, padding."""
    length = len(needle) + len(needle) % 2
    fields = {struct.pack(fmt, length) for fmt in ("<H", ">H", "<I", ">I")}
    pad = rb"[ \x00]" if len(needle) % 2 else b""
    return b"(?:" + b"|".join(re.escape(f) for f in sorted(fields)) + b")" + re.escape(needle) + pad


def occurs(value: str, raw: bytes, header: bytes) -> bool:
    """Whether ``value`` is in a file: anywhere if long, else in context outside pixels.

    In context means as a whole element value (after its length field) or as a token of a
    longer value; a short value inside a new ``2.25.`` UID or inside another number is
    chance, not a leak.
    """
    for needle in _encodings(value):
        if len(needle) >= LONG and needle in raw:
            return True
        token = rb"(?<![A-Za-z0-9.])" + re.escape(needle) + rb"(?![A-Za-z0-9.])"
        if re.search(token, header) or re.search(as_element_value(needle), header):
            return True
    return False


def needles(values: Iterable[str]) -> set[str]:
    return {v for v in values if len(v) >= 3 and v not in PLACEHOLDERS}


@dataclass
class Output:
    """One de-identified file with the input it came from."""

    source: Path
    path: Path
    raw: bytes
    ds: Dataset
    src_ds: Dataset

    @property
    def header(self) -> bytes:
        pixel = self.ds.get("PixelData")
        return header_bytes(self.raw, pixel if isinstance(pixel, bytes) else None)

    def leaks(self, values: Iterable[str]) -> list[str]:
        header = self.header
        return sorted(v for v in needles(values) if occurs(v, self.raw, header))


def linkage_of(out: Path) -> Path:
    """Where :func:`deid` keeps the input linkage of ``out`` (beside it, never inside)."""
    return out.with_name(out.name + "-inputs.csv")


def deid(src: Path, out: Path, **kwargs) -> DeidReport:
    """Headers only (the pixel policies are tested in test_pixel_policy.py)."""
    kwargs.setdefault("pixels", "off")
    kwargs.setdefault("key", KEY)
    return deidentify_tree(src, out, input_linkage=linkage_of(out), progress=False, **kwargs)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def audit_rows(out: Path) -> list[dict[str, str]]:
    """The audit with each input pseudonym mapped back to its file name ("pseudonym" kept)."""
    path_of = {r["input"]: r["input_path"] for r in read_csv(linkage_of(out))}
    rows = read_csv(out / "deid_audit.csv")
    for row in rows:
        row["pseudonym"], row["input"] = row["input"], path_of[row["input"]]
    return rows


def outputs(src: Path, out: Path) -> list[Output]:
    found = []
    for row in audit_rows(out):
        if row["status"] == "deidentified":
            path = out / row["output"]
            found.append(
                Output(
                    src / row["input"],
                    path,
                    path.read_bytes(),
                    dcmread_quiet(path),
                    dcmread_quiet(src / row["input"], force=True),
                )
            )
    return found


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def read_every_value(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        for elem in all_elements(ds):
            _ = elem.value


def dcmdump_messages(exe: str, path: Path) -> tuple[int, list[str]]:
    """dcmdump's exit status and its error and warning lines for one file."""
    proc = subprocess.run(
        [exe, "+fo", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        check=False,
    )
    return proc.returncode, [ln for ln in proc.stderr.splitlines() if ln[:2] in ("E:", "W:")]


def check_dcmdump(exe: str, items: Iterable[Output]) -> list[str]:
    problems = []
    for item in items:
        status, messages = dcmdump_messages(exe, item.path)
        _, before = dcmdump_messages(exe, item.source)
        new = [m for m in messages if m not in before]
        if status != 0 or new:
            problems.append(f"{item.source.name}: dcmdump exit {status}, {new[:3]}")
    return problems


# ---- the Basel CT series ---------------------------------------------------------------------


@dataclass
class BaselRun:
    src: Path
    out: Path
    rows: list[dict[str, str]]
    items: list[Output]


@pytest.fixture(scope="module")
def basel(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> BaselRun:
    src = shared_data / "ct_series_basel" / "dicom"
    out = tmp_path_factory.mktemp("basel") / "out"
    deid(src, out)
    return BaselRun(src, out, audit_rows(out), outputs(src, out))


def basel_leftovers(ds: Dataset) -> dict[str, set[str]]:
    """What shared/data/README.md lists as left in the series, read from one input."""
    found: dict[str, set[str]] = {}

    def add(what: str, values: Iterable[str]) -> None:
        found.setdefault(what, set()).update(values)

    for elem in all_elements(ds):
        values = texts(elem)
        if elem.VR in ("DA", "DT", "TM"):
            add("dates and times", values)
            for v in values:
                if elem.VR in ("DA", "DT") and len(v) >= 8:
                    day = v[:8]
                    add("dates and times", {day, f"{day[:4]}-{day[4:6]}-{day[6:8]}"})
                    add("dates and times", {f"{day[6:8]}.{day[4:6]}.{day[:4]}"})
                if elem.VR == "TM" and len(v) >= 6:
                    add("dates and times", {v[:6]})
        keyword = elem.keyword
        if keyword == "InstitutionAddress":
            add(keyword, {w for v in values for w in v.split() if len(w) >= 4})
        elif keyword in SHORT_IDENTIFIERS or keyword == "SourceApplicationEntityTitle":
            add(keyword, values)
        elif elem.tag.is_private and elem.tag.is_private_creator:
            add("private creators", values)
    add("instance UIDs", instance_uids(ds))
    return found


def test_basel_every_file_deidentified(basel: BaselRun) -> None:
    assert len(basel.rows) == 20
    assert {r["status"] for r in basel.rows} == {"deidentified"}, basel.rows
    assert len(basel.items) == 20


def test_basel_leftovers_are_gone_from_the_output_bytes(basel: BaselRun) -> None:
    problems = []
    for item in basel.items:
        wanted = basel_leftovers(item.src_ds)
        # the test must be able to fail: each listed leftover is really in the input
        for what in ("dates and times", "InstitutionAddress", "StationName", "instance UIDs"):
            assert needles(wanted.get(what, ())), f"{item.source.name}: no {what} in the input"
        for what, values in wanted.items():
            leaked = item.leaks(values)
            if leaked:
                problems.append(f"{item.source.name}: {what} left: {leaked}")
    assert not problems, "\n".join(problems[:20])


def test_basel_short_identifiers_are_gone_from_every_element(basel: BaselRun) -> None:
    """Short values (DeviceSerialNumber 5 digits, ...) checked as element values too."""
    keywords = (*SHORT_IDENTIFIERS, "PatientWeight", "InstitutionAddress")
    checked = 0
    for item in basel.items:
        original = {v for e in all_elements(item.src_ds) if e.keyword in keywords for v in texts(e)}
        present = {v for e in all_elements(item.ds) for v in texts(e)}
        assert not needles(original) & present, item.source.name
        for elem in all_elements(item.ds):
            if elem.keyword in keywords:
                assert set(texts(elem)) <= PLACEHOLDERS, (item.source.name, elem)
        checked += len(original)
    assert checked > 0


def test_basel_no_private_group_and_no_source_ae(basel: BaselRun) -> None:
    for item in basel.items:
        assert any(e.tag.is_private for e in item.src_ds.iterall())
        odd = [str(e.tag) for e in all_elements(item.ds) if e.tag.group % 2]
        assert not odd, f"{item.source.name}: private elements {odd[:5]}"
        meta = item.ds.file_meta
        assert "SourceApplicationEntityTitle" not in meta
        assert meta.MediaStorageSOPInstanceUID == item.ds.SOPInstanceUID
        assert meta.MediaStorageSOPClassUID == item.src_ds.file_meta.MediaStorageSOPClassUID
        assert item.ds.SOPClassUID == meta.MediaStorageSOPClassUID


def test_basel_one_study_one_series_with_new_uids(basel: BaselRun) -> None:
    # the trap: the inputs' Study, Series and SOP Instance UIDs are empty
    assert all(not str(i.src_ds.get("SeriesInstanceUID", "")) for i in basel.items)
    studies = {str(i.ds.StudyInstanceUID) for i in basel.items}
    series = {str(i.ds.SeriesInstanceUID) for i in basel.items}
    sops = {str(i.ds.SOPInstanceUID) for i in basel.items}
    assert len(studies) == 1 and len(series) == 1 and len(sops) == 20
    for uid in studies | series | sops:
        assert uid and len(uid) <= 64 and re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid), uid
    folders = {p.relative_to(basel.out).parts[:2] for p in (i.path for i in basel.items)}
    assert folders == {(studies.pop(), series.pop())}
    for item in basel.items:
        assert item.path.name == f"{item.ds.SOPInstanceUID}.dcm"


def test_basel_marked_as_deidentified(basel: BaselRun) -> None:
    for item in basel.items:
        assert item.ds.PatientIdentityRemoved == "YES"
        codes = {
            (c.CodeValue, c.CodingSchemeDesignator)
            for c in item.ds.DeidentificationMethodCodeSequence
        }
        assert ("113100", "DCM") in codes


def test_basel_same_volume_and_same_pixel_bytes(basel: BaselRun) -> None:
    for item in basel.items:
        assert item.ds.PixelData == item.src_ds.PixelData, item.source.name
    before = load_series(basel.src)
    after = load_series([i.path for i in basel.items])
    assert after.array.shape == before.array.shape == (512, 512, 20)
    np.testing.assert_array_equal(after.array, before.array)
    np.testing.assert_array_equal(after.affine, before.affine)


def test_basel_dcmdump_reads_every_output(basel: BaselRun, dcmdump: str) -> None:
    problems = check_dcmdump(dcmdump, basel.items)
    assert not problems, "\n".join(problems)


# ---- pydicom, pydicom-data and deid-data files -------------------------------------------------


def real_files() -> dict[str, Path]:
    """``unique name -> path`` of the selection (pydicom-data and deid-data must be there)."""
    chosen: dict[str, Path] = {}
    for table, package in ((PYDICOM_FILES, "pydicom"), (PYDICOM_DATA_FILES, "pydicom-data")):
        for name in table:
            path = get_testdata_file(name, download=False)
            if path is None:
                missing_component(f"{name} from the PyPI package {package}")
            chosen[f"pydicom_{name}"] = Path(path)
    try:
        import deid_data
    except ImportError:
        missing_component("deid-data (PyPI deid_data)")
    root = Path(deid_data.__file__).parent / "data"
    for pattern in DEID_DATA_GLOBS:
        matched = sorted(root.glob(pattern))
        if not matched:
            missing_component(f"deid_data/data/{pattern}")
        for path in matched:
            chosen[f"deid_{path.parent.name}_{path.name}"] = path
    return chosen


def sop_uid_of(path: Path) -> str:
    try:
        ds = dcmread_quiet(path, force=True, stop_before_pixels=True)
    except Exception:
        return ""
    return str(ds.get("SOPInstanceUID", "")) or str(
        getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPInstanceUID", "")
    )


def split_by_instance(files: dict[str, Path]) -> list[dict[str, Path]]:
    """Sets without two files of one SOP instance (MR_small in four syntaxes, ...).

    In one tree the second copy of an instance is quarantined as a duplicate, which is
    right; to check every syntax, each copy goes into a run of its own.
    """
    sets: list[dict[str, Path]] = []
    seen: dict[str, int] = {}
    for name, path in sorted(files.items()):
        uid = sop_uid_of(path)
        index = seen.get(uid, -1) + 1 if uid else 0
        if uid:
            seen[uid] = index
        while len(sets) <= index:
            sets.append({})
        sets[index][name] = path
    return sets


def copy_in(files: dict[str, Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, path in files.items():
        shutil.copyfile(path, folder / name)
    return folder


@dataclass
class SelectionRun:
    inputs: list[Path]
    rows: list[dict[str, str]]
    items: list[Output]
    outs: list[Path]


@pytest.fixture(scope="module")
def selection() -> dict[str, Path]:
    return real_files()


@pytest.fixture(scope="module")
def allowed(selection: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> SelectionRun:
    """Every file de-identified with burned-in pixels allowed, in duplicate-free sets."""
    root = tmp_path_factory.mktemp("allowed")
    run = SelectionRun([], [], [], [])
    for n, files in enumerate(split_by_instance(selection)):
        src = copy_in(files, root / f"in{n}")
        out = root / f"out{n}"
        deid(src, out, allow_burned_in=True)
        run.inputs.extend(src / name for name in files)
        run.rows.extend(audit_rows(out))
        run.items.extend(outputs(src, out))
        run.outs.append(out)
    return run


def test_selection_default_run_accounts_for_every_input(
    selection: dict[str, Path], tmp_path: Path
) -> None:
    src = copy_in(selection, tmp_path / "in")
    out = tmp_path / "out"
    report = deid(src, out)
    rows = audit_rows(out)
    assert sorted(r["input"] for r in rows) == sorted(selection)
    assert len(report.rows) == len(rows)
    ultrasound = 0
    for row in rows:
        assert row["status"] in ("deidentified", "quarantined"), row
        if row["status"] == "quarantined":
            copy = out / row["output"]
            assert copy == out / "quarantine" / f"{row['pseudonym']}.dcm"
            assert copy.read_bytes() == (src / row["input"]).read_bytes()
            reason = copy.with_suffix(".reason.txt").read_text(encoding="utf-8")
            assert reason.strip() == row["reason"] and len(reason.splitlines()) == 1
        else:
            assert (out / row["output"]).is_file()
        if not is_part10(src / row["input"]):
            continue
        ds = dcmread_quiet(src / row["input"], stop_before_pixels=True)
        if str(ds.get("Modality", "")).upper() == "US":
            ultrasound += 1
            assert row["status"] == "quarantined", row
            assert "burned-in" in row["reason"], row
    assert ultrasound >= 3  # deid-data's ultrasounds and pydicom-data's


def test_selection_with_burned_in_allowed_processes_every_part10_file(
    allowed: SelectionRun,
) -> None:
    names = sorted(p.name for p in allowed.inputs)
    assert sorted(r["input"] for r in allowed.rows) == names
    for row, path in zip(
        sorted(allowed.rows, key=lambda r: r["input"]),
        sorted(allowed.inputs, key=lambda p: p.name),
        strict=True,
    ):
        expected = "deidentified" if is_part10(path) else "quarantined"
        assert row["status"] == expected, row
    modalities = {str(i.src_ds.get("Modality", "")) for i in allowed.items}
    assert "US" in modalities  # ultrasound goes through when allowed


def test_selection_identifying_values_are_gone(allowed: SelectionRun) -> None:
    problems = []
    checked = 0
    for item in allowed.items:
        values = {v for kw in IDENTIFYING for v in texts_of_keyword(item.src_ds, kw)}
        checked += len(needles(values))
        leaked = item.leaks(values)
        if leaked:
            problems.append(f"{item.source.name}: {leaked}")
    assert checked > 100
    assert not problems, "\n".join(problems)


def texts_of_keyword(ds: Dataset, keyword: str) -> list[str]:
    elem = ds.data_element(keyword) if keyword in ds else None
    return texts(elem) if elem is not None else []


def test_selection_no_original_instance_uid_survives(allowed: SelectionRun) -> None:
    """Referenced UIDs too, at any depth (also inside sequences stored as UN)."""
    problems = []
    for item in allowed.items:
        leaked = item.leaks(instance_uids(item.src_ds))
        if leaked:
            problems.append(f"{item.source.name}: {leaked}")
    assert not problems, "\n".join(problems)


def test_selection_outputs_read_back_with_pixel_data_unchanged(allowed: SelectionRun) -> None:
    problems = []
    for item in allowed.items:
        try:
            read_every_value(item.path)
        except Exception as exc:  # any exception is the finding
            problems.append(f"{item.source.name}: {exc!r}")
            continue
        if "PixelData" in item.src_ds and item.ds.get("PixelData") != item.src_ds.PixelData:
            problems.append(f"{item.source.name}: pixel data changed")
        ts = item.ds.file_meta.TransferSyntaxUID
        if ts != item.src_ds.file_meta.TransferSyntaxUID:
            problems.append(f"{item.source.name}: transfer syntax changed to {ts}")
    assert not problems, "\n".join(problems)


def test_selection_dcmdump_reads_every_output(allowed: SelectionRun, dcmdump: str) -> None:
    problems = check_dcmdump(dcmdump, allowed.items)
    assert not problems, "\n".join(problems)


# ---- determinism ------------------------------------------------------------------------------

DETERMINISM_FILES = (
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "image_dfl.dcm",
    "JPEG2000.dcm",
    "liver_1frame.dcm",
)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {}
    for name in DETERMINISM_FILES:
        path = get_testdata_file(name, download=False)
        assert path is not None, name
        files[name] = Path(path)
    return copy_in(files, tmp_path_factory.mktemp("determinism") / "in")


def run_tree(src: Path, out: Path, key: bytes) -> dict[str, bytes]:
    deid(src, out, key=key, allow_burned_in=True, workers=2)
    return tree_bytes(out)


def digest(tree: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree.items()}


def test_same_key_gives_byte_identical_trees(small_tree: Path, tmp_path: Path) -> None:
    first = run_tree(small_tree, tmp_path / "a", KEY)
    second = run_tree(small_tree, tmp_path / "b", KEY)
    assert sum(p.endswith(".dcm") for p in first) == len(DETERMINISM_FILES)
    assert digest(first) == digest(second)


def test_rerun_into_the_same_folder_leaves_identical_bytes(
    small_tree: Path, tmp_path: Path
) -> None:
    first = run_tree(small_tree, tmp_path / "out", KEY)
    again = run_tree(small_tree, tmp_path / "out", KEY)
    assert digest(first) == digest(again)


def test_other_key_gives_other_uids(small_tree: Path, tmp_path: Path) -> None:
    ours = run_tree(small_tree, tmp_path / "a", KEY)
    theirs = run_tree(small_tree, tmp_path / "b", OTHER_KEY)

    def uids(tree: dict[str, bytes], root: Path) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for row in audit_rows(root):
            ds = dcmread_quiet(root / row["output"])
            found[row["input"]] = {
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
            }
        return found

    a, b = uids(ours, tmp_path / "a"), uids(theirs, tmp_path / "b")
    assert a.keys() == b.keys() == set(DETERMINISM_FILES)
    for name in a:
        assert not a[name] & b[name], name
    dicoms = {p for p in ours if p.endswith(".dcm")}
    assert dicoms and not dicoms & set(theirs)

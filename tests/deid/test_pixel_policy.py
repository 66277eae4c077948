"""The pixel policy of the pipeline: redact, quarantine, off; audit columns; PACS pulls.

Text is rendered into CT and ultrasound pixels with Pillow (pixel_images.py) and found by
the real OCR pipeline (medai_lab.deid.pixels); without an OCR engine these tests skip
(fail in CI), except the ones about ``off`` and the missing-engine error.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pixel_images import NAME, slice_bytes, text_box
from testsupport import missing_component

from medai_lab.deid import Deidentifier, deidentify_file, deidentify_tree
from medai_lab.deid.pixelstep import require_engine
from medai_lab.errors import MedaiError

KEY = b"pixel-policy-key-0123456789abcd!"
TEXT = "DOE JOHN JD12345"
CLEAN_PIXEL_CODE = "113101"
FILES = {
    "ct_clean.dcm": {"seed": 1},
    "ct_text.dcm": {"seed": 2, "text": TEXT, "burned_in": "YES"},
    "ct_text_unflagged.dcm": {"seed": 3, "text": TEXT},
    "us_plain.dcm": {"modality": "US", "size": 256, "seed": 4},
}


@pytest.fixture
def ocr() -> None:
    try:
        require_engine("redact")
    except MedaiError as exc:
        missing_component(f"the OCR pixel checker ({exc})")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pixels") / "in"
    root.mkdir()
    for name, spec in FILES.items():
        (root / name).write_bytes(slice_bytes(**spec))
    return root


def run(tree: Path, out: Path, **kwargs) -> dict[str, dict[str, str]]:
    """Audit rows by input file name (through the private input linkage)."""
    link = out.with_name(out.name + "-inputs.csv")
    report = deidentify_tree(tree, out, key=KEY, input_linkage=link, progress=False, **kwargs)
    with open(link, newline="") as fh:
        name_of = {r["input"]: r["input_path"] for r in csv.DictReader(fh)}
    with open(out / "deid_audit.csv", newline="") as fh:
        rows = {name_of[r["input"]]: r for r in csv.DictReader(fh)}
    assert len(report.rows) == len(rows) == len(FILES)
    return rows


def read(out: Path, row: dict[str, str]) -> pydicom.Dataset:
    assert row["status"] == "deidentified", row
    return pydicom.dcmread(out / row["output"])


def codes(ds: pydicom.Dataset) -> set[str]:
    return {str(i.CodeValue) for i in ds.get("DeidentificationMethodCodeSequence", [])}


def pixels_of(name: str) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(slice_bytes(**FILES[name]))).pixel_array


def test_off_keeps_todays_rule_quarantine(tree: Path, tmp_path: Path) -> None:
    rows = run(tree, tmp_path / "out", pixels="off")
    for name in ("ct_text.dcm", "us_plain.dcm"):  # BurnedInAnnotation YES; modality US
        assert rows[name]["status"] == "quarantined", rows[name]
        assert rows[name]["reason"].startswith("burned-in annotation"), rows[name]
    for row in rows.values():
        assert (row["pixels"], row["text_boxes"], row["ocr_engine"]) == ("skipped", "0", "")
    # off checks no pixels: an unflagged CT with text goes through, as before this policy
    ds = read(tmp_path / "out", rows["ct_text_unflagged.dcm"])
    assert CLEAN_PIXEL_CODE not in codes(ds)
    allowed = run(tree, tmp_path / "allowed", pixels="off", allow_burned_in=True)
    assert all(r["status"] == "deidentified" for r in allowed.values())


def test_quarantine_policy_quarantines_files_with_text(
    ocr: None, tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    rows = run(tree, out, pixels="quarantine")
    for name in ("ct_text.dcm", "ct_text_unflagged.dcm"):
        row = rows[name]
        assert row["status"] == "quarantined" and row["pixels"] == "quarantined", row
        assert row["reason"].startswith("pixels:") and int(row["text_boxes"]) >= 1
        assert TEXT not in row["reason"] and "DOE" not in row["reason"]
        reason = (out / "quarantine" / f"{row['input']}.reason.txt").read_text().strip()
        assert reason == row["reason"]
    for name in ("ct_clean.dcm", "us_plain.dcm"):  # the ultrasound is checked, not ruled out
        row = rows[name]
        assert row["pixels"] == "clean" and row["frames_checked"] == "1" and row["ocr_engine"]
        ds = read(out, row)
        assert np.array_equal(ds.pixel_array, pixels_of(name)), "clean pixels stay as they were"
        assert ds.BurnedInAnnotation == "NO" and CLEAN_PIXEL_CODE in codes(ds)


def test_redact_writes_the_file_without_its_text(ocr: None, tree: Path, tmp_path: Path) -> None:
    from medai_lab.deid.pixels import check_pixels

    out = tmp_path / "out"
    rows = run(tree, out, pixels="redact", workers=2)
    for name in ("ct_text.dcm", "ct_text_unflagged.dcm"):
        row = rows[name]
        assert row["pixels"] == "redacted" and int(row["text_boxes"]) >= 1, row
        ds = read(out, row)
        assert ds.BurnedInAnnotation == "NO" and CLEAN_PIXEL_CODE in codes(ds)
        assert str(ds.PatientName) != NAME
        before, after = pixels_of(name), ds.pixel_array
        x0, y0, x1, y1 = text_box()
        assert (before[y0:y1, x0:x1] == 2000).any() and not (after[y0:y1, x0:x1] == 2000).any()
        far = before.shape[0] // 2  # the lower half holds no text and stays as it was
        assert np.array_equal(before[far:], after[far:])
        again = check_pixels((out / row["output"]).read_bytes(), "quarantine")
        assert again.action == "clean", "the OCR finds no text in the redacted file"
    assert rows["ct_clean.dcm"]["pixels"] == "clean"
    assert rows["us_plain.dcm"]["status"] == "deidentified"


def test_single_file_api_redacts_by_default(ocr: None, tree: Path, tmp_path: Path) -> None:
    dst = deidentify_file(tree / "ct_text.dcm", tmp_path / "one.dcm", key=KEY)
    ds = pydicom.dcmread(dst)
    assert ds.BurnedInAnnotation == "NO"
    assert not (ds.pixel_array == 2000).any()


def test_pacs_store_gets_the_same_policy(ocr: None, tree: Path, tmp_path: Path) -> None:
    from medai_lab.cli import build_parser
    from medai_lab.pacs.store import RetrievalStore

    data = (tree / "ct_text.dcm").read_bytes()
    series = str(pydicom.dcmread(io.BytesIO(data)).SeriesInstanceUID)
    strict = RetrievalStore(tmp_path / "q", Deidentifier(KEY, pixels="quarantine"))
    assert strict.put(series, data) is None
    assert [r.split(":")[0] for r in strict.quarantined] == ["pixels"]
    stored = RetrievalStore(tmp_path / "r", Deidentifier(KEY, pixels="redact")).put(series, data)
    assert stored is not None and not (pydicom.dcmread(stored).pixel_array == 2000).any()
    args = ["pacs", "pull", "--url", "http://127.0.0.1:1", "--out", "o", "--deid"]
    assert build_parser().parse_args(args).pixels == "redact"
    assert build_parser().parse_args([*args, "--pixels", "off"]).pixels == "off"


def test_missing_engine_is_one_line_before_any_work(tree: Path, tmp_path: Path) -> None:
    # a machine without onnxruntime (the OCR extra not installed): its import fails
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from medai_lab.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", code, "deid", str(tree), str(out)]
    proc = subprocess.run([*cmd, "--key-file", str(tmp_path / "k")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--pixels off" in proc.stderr
    assert not out.exists() and not (tmp_path / "k").exists(), "nothing was done"
    off = subprocess.run([*cmd, "--pixels", "off", "--quiet", "--key-file", str(tmp_path / "k")])
    assert off.returncode == 0


def test_objects_without_pixel_data_are_not_claimed_clean(ocr: None, tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(slice_bytes(seed=7, burned_in="YES")))
    del ds.PixelData
    src = tmp_path / "in"
    src.mkdir()
    ds.save_as(src / "header_only.dcm", enforce_file_format=True)
    report = deidentify_tree(src, tmp_path / "out", key=KEY, progress=False)
    (row,) = report.rows
    assert row["status"] == "deidentified" and row["pixels"] == "skipped", row
    out = read(tmp_path / "out", row)
    assert CLEAN_PIXEL_CODE not in codes(out), "no pixels were checked: no claim"
    assert out.BurnedInAnnotation == "YES", "nothing checked, nothing changed"


def test_segmentations_are_label_masks_and_never_redacted(ocr: None, tmp_path: Path) -> None:
    """A SEG whose mask even spells text keeps every voxel: masks are not pictures."""
    import highdicom as hd
    from pixel_images import burn_text

    ct = pydicom.dcmread(io.BytesIO(slice_bytes(seed=5)))
    ct.PatientBirthDate, ct.PatientSex, ct.StudyTime = "19700101", "M", "101010"
    ct.AccessionNumber, ct.ReferringPhysicianName, ct.StudyID = "A1", "", "1"
    ct.FrameOfReferenceUID, ct.SeriesNumber = pydicom.uid.generate_uid(), 1
    ct.SliceThickness, ct.Manufacturer = 1.0, "test"
    mask = np.zeros((ct.Rows, ct.Columns), np.float32)
    burn_text(mask, TEXT, 1)
    seg = hd.seg.Segmentation(
        source_images=[ct],
        pixel_array=mask.astype(bool)[None],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[
            hd.seg.SegmentDescription(
                segment_number=1,
                segment_label="lesion",
                segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Structure"),
                segmented_property_type=hd.sr.CodedConcept("52988006", "SCT", "Lesion"),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        ],
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    src = tmp_path / "in"
    src.mkdir()
    seg.save_as(src / "seg.dcm")
    from medai_lab.deid.pixels import check_pixels

    # the pixels package itself refuses to read masks as pictures, whatever they spell
    outcome = check_pixels((src / "seg.dcm").read_bytes(), "quarantine")
    assert outcome.action == "skipped" and "segmentation" in outcome.reason
    report = deidentify_tree(src, tmp_path / "out", key=KEY, progress=False)
    (row,) = report.rows
    assert row["status"] == "deidentified" and row["pixels"] == "skipped", row
    out = read(tmp_path / "out", row)
    assert out.PixelData == seg.PixelData and CLEAN_PIXEL_CODE not in codes(out)

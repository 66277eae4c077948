"""check_pixels on the generated corpus: recall, false redaction, exactness, headers, policies."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGLosslessSV1

from medai_lab.deid.pixels import check_pixels
from medai_lab.errors import MedaiError

FOUND = 0.9  # a string counts as found when redaction boxes cover 90 % of its ink box


def _found(text, outcome) -> bool:
    import corpus

    return outcome.action == "quarantine" or corpus.covered(text.box, outcome.regions) >= FOUND


def _raw(data: bytes) -> np.ndarray:
    """Decoded stored values as (frames, rows, cols, samples)."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    shape = (-1, ds.Rows, ds.Columns, ds.get("SamplesPerPixel", 1))
    return pixel_array(io.BytesIO(data), raw=True).reshape(shape)


def test_recall_of_strings_8px_and_taller(checked):
    texts = [(t, o) for item, _, o in checked for t in item.texts if t.height >= 8]
    assert len(texts) >= 30
    recall = sum(_found(t, o) for t, o in texts) / len(texts)
    assert recall >= 0.93, f"recall {recall:.2f}"


def test_text_free_images_are_rarely_redacted(checked):
    free = [(item, o) for item, _, o in checked if item.text_free]
    assert len(free) >= 10
    touched = [item.name for item, o in free if o.action != "clean"]
    assert len(touched) <= 1, touched


def test_pixels_outside_the_boxes_are_bit_identical(checked):
    redacted = [(item, data, o) for item, data, o in checked if o.action == "redacted"]
    assert len(redacted) >= 15
    for item, data, o in redacted:
        before, after = _raw(data), _raw(o.data)
        assert before.shape == after.shape, item.name
        mask = np.zeros(before.shape[1:3], bool)
        for x0, y0, x1, y1 in o.regions:
            mask[y0:y1, x0:x1] = True
        assert mask.any(), item.name
        assert np.array_equal(before[:, ~mask], after[:, ~mask]), item.name


def test_filled_regions_hold_one_value_per_frame(checked):
    for item, _, o in checked:
        if o.action != "redacted":
            continue
        x0, y0, x1, y1 = o.regions[0]
        for frame in _raw(o.data):
            region = frame[y0:y1, x0:x1].reshape(-1, frame.shape[-1])
            assert (region == region[0]).all(), item.name


def test_transfer_syntax_is_kept_where_an_encoder_exists(checked):
    for item, _, o in checked:
        if o.action != "redacted":
            continue
        written = str(pydicom.dcmread(io.BytesIO(o.data)).file_meta.TransferSyntaxUID)
        assert written == o.transfer_syntax
        if item.syntax == JPEGLosslessSV1:  # no JPEG lossless encoder: the documented fallback
            assert written == ExplicitVRLittleEndian
        else:
            assert written == item.syntax, item.name


def test_lossy_files_with_text_are_quarantined_and_clean_ones_untouched(checked):
    lossy = [(item, data, o) for item, data, o in checked if item.syntax == JPEGBaseline8Bit]
    assert any(item.texts for item, _, _ in lossy) and any(item.text_free for item, _, _ in lossy)
    for item, data, o in lossy:
        if item.texts:
            assert o.action == "quarantine" and o.data is None
            assert o.reason == "pixels: lossy transfer syntax cannot be re-encoded losslessly"
        elif o.action == "clean":
            src, out = pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(io.BytesIO(o.data))
            assert out.PixelData == src.PixelData


def test_headers_record_the_clean_pixel_data_option(checked):
    for item, data, o in checked:
        if o.data is None:
            continue
        ds = pydicom.dcmread(io.BytesIO(o.data))
        assert ds.BurnedInAnnotation == "NO"
        seq = ds.DeidentificationMethodCodeSequence
        codes = [(c.CodeValue, c.CodingSchemeDesignator) for c in seq]
        assert codes.count(("113101", "DCM")) == 1, item.name
        src = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        assert ds.get("PatientIdentityRemoved") == src.get("PatientIdentityRemoved")


def test_existing_method_codes_are_kept(corpus_items, ocr_engine):
    item = next(i for i in corpus_items if i.texts and i.syntax == ExplicitVRLittleEndian)
    ds = pydicom.dcmread(item.path)
    ds.PatientIdentityRemoved = "YES"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic"
    ds.DeidentificationMethodCodeSequence = [code]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = pydicom.dcmread(io.BytesIO(check_pixels(buf.getvalue()).data))
    values = [c.CodeValue for c in out.DeidentificationMethodCodeSequence]
    assert values == ["113100", "113101"]
    assert out.PatientIdentityRemoved == "YES"


def test_outcomes_never_carry_the_text(checked):
    for item, _, o in checked:
        said = f"{o.reason} {o.engine} {o.action} {o.layouts}".lower()
        for text in item.texts:
            for word in text.string.replace("^", " ").replace(",", " ").split():
                if len(word) >= 4:
                    assert word.lower() not in said, item.name


def test_long_loops_check_a_subset_plus_projections(checked):
    cine = [(item, o) for item, _, o in checked if item.name.endswith("/cine")]
    assert cine
    for item, o in cine:
        assert o.frames_checked == 16
        assert all(_found(t, o) for t in item.texts if t.height >= 8)


@pytest.mark.parametrize("policy", ["off", "quarantine"])
def test_policies(checked, policy):
    with_text = next((i, d) for i, d, o in checked if i.texts and o.action == "redacted")
    free = next((i, d) for i, d, o in checked if i.text_free and o.action == "clean")
    out_text = check_pixels(with_text[1], policy)
    out_free = check_pixels(free[1], policy)
    if policy == "off":
        assert out_text.action == out_free.action == "skipped"
        assert out_text.data is None and out_text.frames_checked == 0
    else:
        assert out_text.action == "quarantine" and out_text.data is None
        assert out_text.reason == "pixels: text found in pixel data"
        assert out_free.action == "clean"


def test_bad_input_and_bad_policy(ocr_engine):
    out = check_pixels(b"not a dicom file at all")
    assert out.action == "quarantine" and out.reason == "pixels: file cannot be read"
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.Modality = "SR"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert check_pixels(buf.getvalue()).action == "skipped"
    with pytest.raises(MedaiError, match="pixel policy"):
        check_pixels(buf.getvalue(), "maybe")

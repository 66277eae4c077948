"""Real burned-in text (pydicom-data ultrasound), the pre-filter and the vendor layouts."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medai_lab.deid.pixels import check_pixels
from medai_lab.deid.pixels.frames import decode, view
from medai_lab.deid.pixels.layouts import ENV, layout_boxes
from medai_lab.deid.pixels.prefilter import maybe_text
from medai_lab.errors import MedaiError


def _file(name: str) -> bytes:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not in pydicom-data here")
    return open(path, "rb").read()


def test_real_echo_text_is_found_outside_any_layout(ocr_engine):
    """Philips EPIQ 7C echo (real): text blocks below the header band, hand-marked boxes."""
    import corpus

    out = check_pixels(_file("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    assert out.action == "redacted"
    assert out.transfer_syntax == "1.2.840.10008.1.2.1"  # no JPEG lossless encoder here
    for box in [(14, 56, 62, 114), (106, 66, 330, 112), (930, 732, 993, 747)]:
        assert corpus.covered(box, out.regions) >= 0.9, box


def test_prefilter_does_not_lower_recall(checked):
    """Every string the detector finds on its own is still found with the pre-filter on."""
    import corpus

    for item, data, with_filter in checked:
        if not item.texts:
            continue
        without = check_pixels(data, use_prefilter=False)
        for text in item.texts:
            if corpus.covered(text.box, without.regions) >= 0.9:
                assert corpus.covered(text.box, with_filter.regions) >= 0.9, item.name


def test_prefilter_skips_most_clean_ct_slices(shared_data):
    slices = sorted((shared_data / "ct_series_basel" / "dicom").iterdir())
    passed = 0
    for path in slices:
        data = path.read_bytes()
        px = decode(data, pydicom.dcmread(io.BytesIO(data)))
        passed += maybe_text(view(px, 0))
    assert passed <= len(slices) // 4


def test_ultrasound_header_band_from_regions():
    ds = pydicom.dcmread(io.BytesIO(_file("OBXXXX1A.dcm")), stop_before_pixels=True)
    boxes, names = layout_boxes(ds)
    assert (0, 0, 800, 60) in boxes
    assert "ultrasound header band" in names


def test_site_layouts_from_a_file(tmp_path, monkeypatch):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    extra = tmp_path / "site.yaml"
    extra.write_text(
        "layouts:\n  - name: site ct corner\n    match: {modality: [CT]}\n"
        "    boxes: [[0, 0, 40, 12], [120, 120, 999, 999]]\n"
    )
    monkeypatch.setenv(ENV, str(extra))
    boxes, names = layout_boxes(ds)
    assert boxes == [(0, 0, 40, 12), (120, 120, 128, 128)] and names == ["site ct corner"]
    extra.write_text("layouts: [")
    monkeypatch.setenv(ENV, str(extra) + "x")
    with pytest.raises(MedaiError, match=ENV):
        layout_boxes(ds)

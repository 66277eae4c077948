"""Objects that are not pictures are left alone; the project's own CT phantoms are text-free."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medai_lab.deid.pixels import check_pixels
from medai_lab.deid.pixels.verify import has_lettering, plausible_size


def _seg_from_ct(text_like: bool) -> bytes:
    """A BINARY DICOM SEG (highdicom) on pydicom's CT_small; optionally its mask spells bars
    and blocks that a text detector could take for letters."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    mask = np.zeros((1, ct.Rows, ct.Columns), bool)
    mask[0, 40:80, 30:90] = True
    if text_like:  # a row of glyph-sized blocks, like a word
        for x in range(10, 110, 8):
            mask[0, 100:110, x : x + 5] = True
    algo = hd.AlgorithmIdentificationSequence(
        name="test", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    desc = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="organ",
        segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Liver,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algo,
    )
    seg = hd.seg.Segmentation(
        source_images=[ct],
        pixel_array=mask,
        segmentation_type="BINARY",
        segment_descriptions=[desc],
        series_instance_uid=hd.UID(),
        series_number=100,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedAI Lab",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="none",
    )
    buf = io.BytesIO()
    seg.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_segmentation_objects_are_skipped(ocr_engine):
    data = _seg_from_ct(text_like=True)
    assert pydicom.dcmread(io.BytesIO(data)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    out = check_pixels(data)
    assert out.action == "skipped"
    assert out.reason == "pixels: segmentation object, not an image"
    assert out.data is None and out.boxes == 0 and out.detector_runs == 0


def _part10(path: str) -> bytes:
    """pydicom's RT test files as Part 10 (some lack the file meta header)."""
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_rt_dose_and_rtstruct_are_skipped(ocr_engine):
    for name, reason in (
        ("rtdose.dcm", "pixels: dose grid, not an image"),
        ("rtstruct.dcm", "pixels: no pixel data"),
    ):
        path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"{name} is not in pydicom's test files here")
        out = check_pixels(_part10(path))
        assert (out.action, out.reason, out.data) == ("skipped", reason, None), name


@pytest.fixture(scope="module")
def phantom_slices(tmp_path_factory) -> list[tuple[str, bytes]]:
    """Every 4th slice of one lung, liver and heart phantom case (96 x 96 CT)."""
    from medai_lab.datasets.phantom import write_phantom_dataset

    out = []
    for task in ("lung", "liver", "heart"):
        root = tmp_path_factory.mktemp(f"phantom-{task}")
        write_phantom_dataset(root, task, 1, fmt="dicom")
        files = sorted(root.rglob("*.dcm"))
        assert files, task
        out += [(task, f.read_bytes()) for f in files[::4]]
    return out


def test_phantom_ct_slices_are_rarely_redacted(phantom_slices, ocr_engine):
    """Smooth synthetic anatomy at 96 px (enlarged 4x for the detector) is not text."""
    touched = [task for task, data in phantom_slices if check_pixels(data).action != "clean"]
    assert len(touched) <= 0.15 * len(phantom_slices), touched


def test_region_checks_reject_blobs_and_ruler_combs():
    grey = np.full((96, 96), 40, np.uint8)
    yy, xx = np.ogrid[:96, :96]
    grey[((yy - 48) / 30) ** 2 + ((xx - 48) / 40) ** 2 <= 1] = 150  # a body outline
    rgb = np.broadcast_to(grey[..., None], (96, 96, 3))
    assert not plausible_size((8, 18, 88, 78), 96, 96)  # the whole body as one "line"
    assert not has_lettering(rgb, (20, 40, 76, 56))  # inside the body: no strokes
    comb = np.zeros((64, 200), np.uint8)
    comb[40, 10:190] = 255
    comb[34:40, 10:190:6] = 255  # ticks on a base line
    assert not has_lettering(np.broadcast_to(comb[..., None], (64, 200, 3)), (8, 30, 192, 44))


def test_region_checks_keep_rendered_text():
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (200, 40), 30)
    fnt = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 14)
    ImageDraw.Draw(img).text((10, 12), "NGUYEN^LARS 1987", font=fnt, fill=220)
    rgb = np.broadcast_to(np.asarray(img)[..., None], (40, 200, 3))
    ys, xs = np.nonzero(np.asarray(img) > 100)
    box = (int(xs.min()) - 3, int(ys.min()) - 3, int(xs.max()) + 4, int(ys.max()) + 4)
    assert plausible_size(box, 512, 512)
    assert has_lettering(rgb, box)

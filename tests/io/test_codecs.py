"""Compressed frames decoded straight from their code streams equal pydicom's decoding."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from testsupport import missing_component

from medai_lab.io import codecs
from medai_lab.io.headers import read_header
from medai_lab.io.pixels import mask_bits, stored_dtype


def _stored(path: Path) -> tuple[np.ndarray, bool]:
    """What the loader keeps of ``path``: stored values, and whether the direct path ran."""
    header = read_header(path)
    direct = codecs._direct(header) is not None
    out = np.zeros((header.n_frames, header.rows, header.columns), stored_dtype([header]))
    out[:] = codecs.decode_frames(header)
    mask_bits(out, header.bits_stored)
    return out, direct


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real signed CT (CT_small) re-encoded by dcmtk as JPEG lossless SV1 and JPEG-LS."""
    out = tmp_path_factory.mktemp("codecs")
    files = []
    for tool, option in (("dcmcjpeg", "+e1"), ("dcmcjpls", "+el")):
        exe = shutil.which(tool)
        if exe is None:
            missing_component(f"{tool} (Debian package dcmtk)")
        dst = out / f"{tool}.dcm"
        subprocess.run([exe, option, get_testdata_file("CT_small.dcm"), dst], check=True)
        files.append(dst)
    return files


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS, signed
        "MR_small_jp2klossless.dcm",  # JPEG 2000, signed
        "J2K_pixelrep_mismatch.dcm",  # code stream unsigned, PixelRepresentation signed
        "MR2_J2KR.dcm",  # JPEG 2000, unsigned 12 bits
    ],
)
def test_direct_decode_equals_pydicom_on_real_files(name):
    path = Path(get_testdata_file(name))
    ours, direct = _stored(path)
    assert direct
    np.testing.assert_array_equal(ours[0], pydicom.dcmread(path).pixel_array)


def test_dcmtk_encoded_signed_ct_decodes_to_the_original(encoded):
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array
    assert original.min() < 0 or original.dtype.kind == "i"
    for path in encoded:
        ours, direct = _stored(path)
        assert direct, path.name
        np.testing.assert_array_equal(ours[0], original)


def test_files_without_a_direct_path_go_through_pydicom(shared_data):
    mosaic = shared_data / "transfer_syntaxes" / "In" / "9.dcm"  # J2K Siemens mosaic
    header = read_header(mosaic)
    assert header.mosaic_tiles and codecs._direct(header) is None
    frames = codecs.decode_frames(header)
    assert frames.shape == (header.n_frames, header.rows, header.columns)

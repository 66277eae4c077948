"""Volumes survive the chunked, shuffled, deflated trip to the browser bit for bit."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from medai_lab.widgets import transport
from medai_lab.widgets.transport import CHUNK_BYTES, browser_dtype, decode, levels, stream


def collect(levels_):
    """Run a stream into a list: {(volume, level): (header, [(msg, payload)])}."""
    got: dict = {}
    order = []

    def send(content, buffers):
        order.append(content["type"])
        key = (content["volume"], content["level"])
        if content["type"] == "begin":
            assert buffers == []
            got[key] = (content, [])
        elif content["type"] == "chunk":
            (payload,) = buffers
            assert isinstance(payload, bytes) and len(payload) <= CHUNK_BYTES + 1024
            got[key][1].append((content, payload))
        else:
            assert content["type"] == "end" and buffers == []

    sent = stream(levels_, send, workers=2)
    return got, order, sent


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [(np.int16, (37, 29, 11)), (np.uint8, (64, 64, 3)), (np.float32, (5, 7, 300)),
     (np.uint16, (130, 90, 2))],
)  # fmt: skip
def test_round_trip_is_exact(dtype, shape) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.normal(0, 300, shape)).astype(dtype)
    arr = np.flip(arr.transpose(1, 0, 2), 0)  # a non-contiguous RAS view, as to_ras() makes
    (lvl,) = levels("image", arr)
    got, order, sent = collect([lvl])
    header, chunks = got[("image", 0)]
    assert order[0] == "begin" and order[-1] == "end"
    assert header["chunks"] == len(chunks) and header["shape"] == list(arr.shape)
    assert np.array_equal(decode(header, chunks), arr)
    assert sent == sum(len(p) for _, p in chunks)


def test_payload_is_i_fastest_little_endian_and_browser_decodable() -> None:
    """What DecompressionStream('deflate') and a typed array see in the browser."""
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 5
    (lvl,) = levels("image", arr)
    header, [(msg, payload)] = collect([lvl])[0][("image", 0)]
    raw = zlib.decompressobj(wbits=15).decompress(payload)  # zlib wrapper = 'deflate' stream
    planes = np.frombuffer(raw, np.uint8).reshape(2, -1)  # low bytes, then high bytes
    values = (planes[0].astype(np.uint16) | (planes[1].astype(np.uint16) << 8)).view(np.int16)
    assert values.tolist() == arr.ravel(order="F").tolist()
    assert header["shuffle"] and msg["offset"] == 0 and msg["size"] == arr.nbytes


def test_big_image_gets_a_preview_first_and_chunks_stay_small() -> None:
    arr = np.zeros((512, 512, 40), np.int16)
    arr[100:400, 50:300, 5:35] = 300
    lv = levels("image", arr)
    assert [lvl.level for lvl in lv] == [1, 0]
    assert lv[0].array.size <= transport.PREVIEW_VOXELS
    got, _, sent = collect(lv)
    preview = decode(*got[("image", 1)])
    assert np.array_equal(preview, arr[:: lv[0].factor[0], :: lv[0].factor[1], :: lv[0].factor[2]])
    assert len(got[("image", 0)][1]) >= arr.nbytes // CHUNK_BYTES
    assert sent < arr.nbytes / 20  # compressible CT-like content is sent compressed


def test_second_stream_reuses_the_compressed_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    (lvl,) = levels("image", np.ones((20, 20, 20), np.int16))
    collect([lvl])
    monkeypatch.setattr(zlib, "compress", lambda *a: pytest.fail("recompressed"))
    got, _, _ = collect([lvl])
    assert np.array_equal(decode(*got[("image", 0)]), np.ones((20, 20, 20), np.int16))


def test_browser_dtypes() -> None:
    assert browser_dtype(np.zeros(3, np.int32)) == np.int16  # HU as int32: fits int16 exactly
    assert browser_dtype(np.array([0, 70000], np.int32)) == np.float32
    assert browser_dtype(np.zeros(3, np.float64)) == np.float32
    assert browser_dtype(np.array([0, 5], np.int64), labels=True) == np.uint8
    assert browser_dtype(np.array([0, 300]), labels=True) == np.uint16
    with pytest.raises(ValueError, match="negative"):
        browser_dtype(np.array([-1, 2]), labels=True)
    assert transport.preview_factor((512, 512, 1000)) != (1, 1, 1)
    assert transport.preview_factor((64, 64, 64)) == (1, 1, 1)
    fx, fy, fz = transport.preview_factor((512, 512, 20))
    assert fz == 1 and 512 * 512 * 20 / (fx * fy) <= transport.PREVIEW_VOXELS

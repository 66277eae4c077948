"""The CI corpus (about 40 images) is built once per session and checked once per item."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from testsupport import missing_component

sys.path.insert(0, str(Path(__file__).parent))  # the corpus module beside these tests


@pytest.fixture(scope="session")
def ocr_engine() -> str:
    from medai_lab.deid.pixels import engine_available

    reason = engine_available()
    if reason:
        missing_component(f"OCR engine ({reason})")
    return "rapidocr"


@pytest.fixture(scope="session")
def corpus_items(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    import corpus

    return corpus.build(tmp_path_factory.mktemp("pixels-corpus"), corpus.CI_RECIPES, shared_data)


@pytest.fixture(scope="session")
def checked(corpus_items, ocr_engine):
    """[(item, input bytes, outcome)] under the default policy."""
    from medai_lab.deid.pixels import check_pixels

    out = []
    for item in corpus_items:
        data = item.path.read_bytes()
        out.append((item, data, check_pixels(data)))
    return out

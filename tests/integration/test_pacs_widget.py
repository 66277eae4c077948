"""The notebook PACS browser against a real Orthanc: search, select, pull with progress."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("ipywidgets")


def test_browser_searches_selects_and_pulls_deidentified(seeded_orthanc, tmp_path: Path) -> None:
    from medai_lab.deid import Deidentifier
    from medai_lab.pacs.auth import Auth
    from medai_lab.pacs.dicomweb import DicomWebClient
    from medai_lab.pacs.widget import PacsBrowser

    client = DicomWebClient(seeded_orthanc.dicomweb_url, auth=Auth.basic(*seeded_orthanc.auth))
    browser = PacsBrowser(client, tmp_path / "out", deidentifier=Deidentifier(b"w" * 32))
    browser.fields["modality"].value = "MR"
    browser.search_button.click()
    assert browser.status.value == "2 series"  # MR_small and MR2_J2KR
    assert all(r["Modality"] == "MR" for r in browser.rows)
    browser.results.value = (0,)
    browser.pull_button.click()
    assert browser.status.value.startswith("pulled 1 series (1 new instances)")
    assert browser.progress.value == browser.progress.max == 1
    (path,) = (tmp_path / "out").rglob("*.dcm")
    assert pydicom.dcmread(path).PatientIdentityRemoved == "YES"
    # bad input shows one line in the widget instead of a traceback
    browser.fields["date_from"].value = "2021-02-30"
    browser.search_button.click()
    assert (
        browser.status.value.startswith("<b>error:</b>") and "calendar date" in browser.status.value
    )

"""The PACS browser widget in real JupyterLab + Chromium against a real Orthanc.

A notebook cell makes ``PacsBrowser`` point at the test Orthanc (DICOMweb, basic auth); the
test types into the search fields in the page, clicks Search, sees the seeded series in the
results list, selects one, pulls it with de-identification ticked, and then finds the pulled
file de-identified in the output folder, with the progress bar full.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytest.importorskip("ipywidgets")


def _field(page, label: str):
    """The text input of the ipywidgets Text whose description is ``label``."""
    return (
        page.locator(".widget-text")
        .filter(has=page.locator("label", has_text=label))
        .locator("input")
    )


def test_pacs_browser_in_lab_pulls_deidentified(
    seeded_orthanc, lab_page, lab, tmp_path: Path
) -> None:
    from pydicom.data import get_testdata_file

    out = tmp_path / "pulled"
    user, password = seeded_orthanc.auth
    cell = "\n".join(
        [
            "from medai_lab.deid import Deidentifier",
            "from medai_lab.pacs.auth import Auth",
            "from medai_lab.pacs.dicomweb import DicomWebClient",
            "from medai_lab.pacs.widget import PacsBrowser",
            f"client = DicomWebClient({seeded_orthanc.dicomweb_url!r},"
            f" auth=Auth.basic({user!r}, {password!r}))",
            f"browser = PacsBrowser(client, {str(out)!r}, deidentifier=Deidentifier(b'w' * 32))",
            "browser",
        ]
    )
    ui = lab_page.open("pacs_browser.ipynb", [cell])
    ui.run()
    page = ui.page
    search = page.locator(".widget-button", has_text="Search")
    search.wait_for(state="visible")
    status = page.locator(".widget-html").last

    # Search by modality: the two MR series of the seeded PACS are listed.
    _field(page, "Modality").fill("MR")
    search.click()
    page.wait_for_function(
        "(el) => el.textContent.includes('series')", arg=status.element_handle(), timeout=30_000
    )
    assert status.inner_text().strip() == "2 series", status.inner_text()
    options = page.locator(".widget-select-multiple select option")
    assert options.count() == 2
    assert all(re.search(r"\bMR\b", t) for t in options.all_inner_texts())

    # Narrow to one patient, select the series, pull with de-identification on.
    _field(page, "Patient ID").fill("4MR1")
    search.click()
    page.wait_for_function(
        "(el) => el.textContent.trim() === '1 series'", arg=status.element_handle()
    )
    assert options.count() == 1
    page.locator(".widget-select-multiple select").select_option(index=0)
    deid = page.locator(".widget-checkbox input[type=checkbox]")
    assert deid.is_checked()
    page.locator(".widget-button", has_text="Pull selected").click()
    page.wait_for_function(
        "(el) => el.textContent.includes('pulled') || el.textContent.includes('error')",
        arg=status.element_handle(),
        timeout=60_000,
    )
    assert status.inner_text().startswith("pulled 1 series (1 new instances)"), status.inner_text()
    bar = page.locator(".widget-hprogress .progress-bar")
    page.wait_for_function(
        "(el) => el.style.width === '100%'", arg=bar.element_handle(), timeout=10_000
    )

    # The file is on disk, de-identified, with the original pixels.
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 1, files
    pulled = pydicom.dcmread(files[0])
    original = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert pulled.PatientIdentityRemoved == "YES"
    assert str(pulled.PatientName) != str(original.PatientName)
    assert pulled.get("PatientID", "") != original.PatientID
    assert pulled.SOPInstanceUID != original.SOPInstanceUID
    assert np.array_equal(pulled.pixel_array, original.pixel_array)
    assert page.offsite.urls == []  # the page fetched nothing beyond loopback

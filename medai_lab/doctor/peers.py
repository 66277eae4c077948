"""Doctor checks of the optional tools MedAI Lab drives or compares against.

Each is looked up on PATH (and in this venv's bin folder, where pip puts dcmqi); none is run,
so this costs milliseconds. Missing tools are warnings: the core works without them.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

from medai_lab.doctor import Check

# name, executables (any one), what it is for, Debian/Ubuntu fix, macOS fix
PEERS = (
    ("dcm2niix", ("dcm2niix",), "reference DICOM -> NIfTI converter (demo check, tests)",
     "apt install dcm2niix", "brew install dcm2niix"),
    ("orthanc", ("Orthanc",), "local PACS for medai-lab pacs serve and the workshops",
     "apt install orthanc orthanc-dicomweb", "docker run -p 8042:8042 orthancteam/orthanc"),
    ("plastimatch", ("plastimatch",), "RTSTRUCT reference (rasterising contours)",
     "apt install plastimatch", "build from plastimatch.org (no Homebrew formula)"),
    ("dcmqi", ("itkimage2segimage", "segimage2itkimage"), "DICOM SEG reference (TCIA/IDC)",
     "pip install dcmqi (in the lock: make install)", "pip install dcmqi"),
    ("dciodvfy", ("dciodvfy",), "IOD validator for the SEG/RTSTRUCT files we write",
     "apt install dicom3tools", "build dicom3tools from dclunie.com"),
)  # fmt: skip


def _find(names: tuple[str, ...]) -> str | None:
    venv_bin = Path(sys.prefix) / "bin"
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=str(venv_bin))
        if found:
            return found
    return None


def optional_peers() -> list[Check]:
    """One line per optional tool, then the OCR engine of pixel de-identification."""
    mac = sys.platform == "darwin"
    out = []
    for name, exes, purpose, apt, brew in PEERS:
        found = _find(exes)
        if found:
            out.append(Check(name, "ok", found))
        else:
            out.append(Check(name, "warn", f"missing: {purpose}", brew if mac else apt))
    out.append(ocr_engine())
    return out


def ocr_engine() -> Check:
    """Whether burned-in text in pixels can be found (``medai_lab.deid.pixels``)."""
    try:
        pixels = importlib.import_module("medai_lab.deid.pixels")
    except ImportError:
        return Check("OCR engine", "warn", "pixel de-identification is not in this version")
    reason = pixels.engine_available()
    if reason is None:
        from medai_lab.deid.pixels import ocr

        return Check("OCR engine", "ok", ocr.describe())
    return Check(
        "OCR engine", "warn", f"{reason}: `medai-lab deid` checks pixels by default",
        "install the ocr extra (make install), or de-identify headers only with --pixels off",
    )  # fmt: skip

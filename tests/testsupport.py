"""Helpers the test modules and conftests import by this unique name.

(``from conftest import ...`` may resolve to whichever conftest.py was imported first.)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDAI_SHARED_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_component(what: str) -> None:
    """Fail in CI, skip elsewhere: a real component the test needs is not there."""
    message = f"{what} is not available"
    if IN_CI:
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)


def canonical(volume) -> tuple[np.ndarray, np.ndarray]:
    """A Volume as (array, affine) in nibabel's closest-canonical RAS orientation."""
    import nibabel as nib

    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(volume.array), volume.affine))
    return np.asanyarray(img.dataobj), img.affine

"""Shared fixtures: the real data in ../shared/data and real external tools.

In CI (CI=true) a missing component fails the test; on a laptop it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testsupport import IN_CI, ROOT, SHARED_DATA, canonical, missing_component  # noqa: F401


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        missing_component(f"shared test data at {SHARED_DATA}")
    return SHARED_DATA


def executable(name: str, package: str) -> str:
    """Path of a real tool, or fail (CI) / skip (elsewhere) naming its Debian package."""
    exe = shutil.which(name)
    if exe is None:
        missing_component(f"{name} (Debian package {package})")
    return exe


@pytest.fixture(scope="session")
def dcm2niix() -> str:
    return executable("dcm2niix", "dcm2niix")


@pytest.fixture(scope="session")
def dcmdump() -> str:
    return executable("dcmdump", "dcmtk")


@pytest.fixture(scope="session")
def run_dcm2niix(dcm2niix: str, tmp_path_factory: pytest.TempPathFactory):
    """Convert with dcm2niix and return the canonical (RAS) nibabel image."""
    import nibabel as nib

    def run(source: Path) -> nib.Nifti1Image:
        out = tmp_path_factory.mktemp("dcm2niix")
        single = ["-s", "y"] if Path(source).is_file() else []  # else it converts the folder
        proc = subprocess.run(
            [dcm2niix, *single, "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        made = sorted(out.glob("*.nii"))
        assert len(made) == 1, f"dcm2niix made {made}: {proc.stdout[-500:]}"
        return nib.as_closest_canonical(nib.load(made[0]))

    return run


# --- MLflow: every test gets its own SQLite store; nothing is written under ~ -----------------
# Creating an MLflow SQLite schema runs all its migrations (seconds), so one empty store is made
# per session and copied into each test's tmp_path.


@pytest.fixture(scope="session", autouse=True)
def _private_mlflow_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    if "MLFLOW_TRACKING_URI" not in os.environ and "MEDAI_MLFLOW_DIR" not in os.environ:
        os.environ["MEDAI_MLFLOW_DIR"] = str(tmp_path_factory.mktemp("mlflow-home"))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mlflow")
    from medai_lab.tracking import make_client

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    make_client(f"sqlite:///{db.as_posix()}").search_experiments()  # creates the schema
    return db


@pytest.fixture
def store(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tracking URI of a fresh SQLite store in tmp_path (also set as MLFLOW_TRACKING_URI)."""
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri

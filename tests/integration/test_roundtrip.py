"""The PACS round trip on a real Orthanc: pull a study, predict with an exported model, write
a DICOM SEG, store it (STOW-RS and C-STORE), and get back exactly what was sent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from medai_lab.cli import main
from medai_lab.pacs import QueryFilter, pull
from medai_lab.pacs.auth import Auth
from medai_lab.pacs.dicomweb import DicomWebClient
from medai_lab.pacs.dimse import DimseClient
from medai_lab.pacs.upload import upload

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


class AirInBody(torch.nn.Module):
    """A fixed 'model' whose answer is known: lung = lung-window intensities of air in tissue."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lung = ((x > 0.2) & (x < 0.5)).float() * 4 - 2
        return torch.cat([torch.zeros_like(x), lung, torch.full_like(x, -4.0)], dim=1)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medai_lab.export import export_model
    from medai_lab.tasks.config import compose

    task = compose("lung", "smoke")["task"]
    contract = {
        "task": "lung",
        "modality": task["modality"],
        "patch_size": [32, 32, 32],
        "in_channels": 1,
        "spacing": task["spacing"],
        "orientation": "RAS",
        "intensity": task["intensity"],
        "labels": {"0": "background", **{str(k): v for k, v in task["labels"].items()}},
    }
    out = tmp_path_factory.mktemp("model") / "lung.ts"
    return export_model(AirInBody(), contract, out, "torchscript").model


@pytest.fixture
def study(orthanc, tmp_path: Path) -> tuple[str, DicomWebClient]:
    from medai_lab.datasets.phantom import write_phantom_dataset

    ph = write_phantom_dataset(tmp_path / "ph", "lung", 1, fmt="dicom", seed=1, progress=False)
    client = DicomWebClient(orthanc.dicomweb_url, auth=Auth.basic(*orthanc.auth), timeout=20)
    report, _ = upload(client, ph / "imagesTr")
    assert report.sent == 64 and not report.failed
    first = next((ph / "imagesTr").rglob("*.dcm"))
    return str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID), client


def _stored_segs(client, study_uid: str, out: Path) -> list[Path]:
    pull(client, QueryFilter(study_uid=study_uid, modality="SEG"), out, progress=False)
    return [p for p in out.rglob("*.dcm") if pydicom.dcmread(p).SOPClassUID == SEG_CLASS]


def test_predict_study_stores_seg_over_stow(study, model: Path, orthanc, tmp_path: Path) -> None:
    from medai_lab.io import load_series
    from medai_lab.io.seg import read_seg

    study_uid, client = study
    work = tmp_path / "work"
    user, password = orthanc.auth
    password_file = tmp_path / "pw"
    password_file.write_text(password)
    password_file.chmod(0o600)
    code = main(
        ["predict", str(model), "--study", study_uid, "--out", str(work), "--store", "--quiet",
         "--url", orthanc.dicomweb_url, "--user", user, "--password-file", str(password_file)]
    )  # fmt: skip
    assert code == 0
    sent = work / "seg.dcm"
    back = _stored_segs(client, study_uid, tmp_path / "back")
    assert len(back) == 1
    assert back[0].read_bytes() == sent.read_bytes() or (
        pydicom.dcmread(back[0]).PixelData == pydicom.dcmread(sent).PixelData
    )
    seg = pydicom.dcmread(back[0])
    image = pydicom.dcmread(next((work / "dicom").rglob("*.dcm")), stop_before_pixels=True)
    assert seg.StudyInstanceUID == study_uid
    assert seg.FrameOfReferenceUID == image.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image.SeriesInstanceUID
    assert seg.SegmentSequence[0].SegmentLabel == "lung"
    # The SEG read back on the image grid equals the model's answer there.
    grid = load_series(work / "dicom")
    labels = read_seg(back[0], grid, labels={1: "lung", 2: "nodule"})
    from medai_lab.io import load_nifti

    image_nii = load_nifti(work / "image.nii.gz")
    assert np.count_nonzero(labels.volume.array == 1) > 1000
    assert labels.volume.shape == image_nii.shape


def test_predict_study_stores_seg_over_c_store(study, model: Path, orthanc, tmp_path: Path) -> None:
    from medai_lab.inference.roundtrip import segment_study

    study_uid, web = study
    dimse = DimseClient("127.0.0.1", orthanc.dicom_port, orthanc.aet, timeout=20)
    report = segment_study(dimse, study_uid, model, tmp_path / "w", store=True, progress=False)
    assert report.stored and report.voxels["lung"] > 1000
    assert set(report.timings) >= {"pull", "predict", "write SEG", "store"}
    back = _stored_segs(web, study_uid, tmp_path / "back")
    assert len(back) == 1
    assert pydicom.dcmread(back[0]).PixelData == pydicom.dcmread(report.seg).PixelData


def test_de_identified_pull_refuses_to_store_back(study, model: Path, tmp_path: Path) -> None:
    from medai_lab.deid import Deidentifier
    from medai_lab.errors import MedaiError
    from medai_lab.inference.roundtrip import segment_study

    study_uid, client = study
    deid = Deidentifier(b"k" * 32, ())
    with pytest.raises(MedaiError, match="cannot go back"):
        segment_study(client, study_uid, model, tmp_path / "w", store=True, deidentifier=deid)
    report = segment_study(
        client, study_uid, model, tmp_path / "w2", deidentifier=deid, progress=False
    )
    seg = pydicom.dcmread(report.seg)
    assert seg.StudyInstanceUID != study_uid  # the SEG carries the de-identified UIDs
    assert seg.PatientIdentityRemoved == "YES"

"""The PACS round trip of one CT study, end to end: pull, predict with an exported model, write
the DICOM SEG, store it back; timed per step on a real local Orthanc.

A fresh Orthanc (temporary folder, free ports, stopped at the end) holds one CT study: a
lung phantom resampled to 512x512 x ``--slices`` (written with ``write_dicom_series``). The
model is a MONAI UNet exported to TorchScript with the lung task's contract (untrained: the
timing of the network is what counts, so its output is replaced by nothing). The round trip is
``medai_lab.inference.roundtrip.segment_study`` over DICOMweb (WADO-RS pull, STOW-RS store).

No other tool does this whole path, so the peer is the part every tool must do anyway:
pulling the study (``pull()`` alone, same client, same run). Prints each step's seconds and,
last, ``RATIO roundtrip_vs_pull <x>`` = round-trip time / pull time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from medai_lab.pacs import QueryFilter, pull
from medai_lab.pacs.auth import Auth
from medai_lab.pacs.dicomweb import DicomWebClient
from medai_lab.pacs.server import OrthancServer
from medai_lab.pacs.upload import upload

USER = ("bench", "bench-roundtrip-pw")


def make_study(folder: Path, slices: int) -> Path:
    """A 512x512 x ``slices`` CT series of the lung phantom, as DICOM."""
    from scipy.ndimage import zoom

    from medai_lab.datasets.phantom import make_phantom
    from medai_lab.io import Volume, write_dicom_series

    image, _ = make_phantom("lung", seed=0)
    arr = zoom(image.array.astype(np.float32), [512 / image.shape[0], 512 / image.shape[1],
               slices / image.shape[2]], order=1)  # fmt: skip
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])
    write_dicom_series(Volume(arr.astype(np.int16), affine, {"modality": "CT"}), folder)
    return folder


def make_model(out: Path) -> Path:
    import torch
    from monai.networks.nets import UNet

    from medai_lab.export import export_model
    from medai_lab.tasks.config import compose

    task = compose("lung", "gpu")["task"]
    contract = {
        "task": "lung",
        "modality": "CT",
        "patch_size": task["patch_size"],
        "in_channels": 1,
        "spacing": task["spacing"],
        "orientation": "RAS",
        "intensity": task["intensity"],
        "labels": {"0": "background", **{str(k): v for k, v in task["labels"].items()}},
    }
    torch.manual_seed(0)
    net = UNet(3, 1, 3, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2)
    return export_model(net, contract, out, "torchscript").model


def main() -> int:
    from medai_lab.inference.roundtrip import segment_study

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=120)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        study_dir = make_study(tmp / "study", args.slices)
        model = make_model(tmp / "lung.ts")
        print(f"made a 512x512x{args.slices} CT study and a UNet export in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        server = OrthancServer(tmp / "orthanc", users=dict([USER])).start()
        try:
            client = DicomWebClient(server.dicomweb_url, auth=Auth.basic(*USER), timeout=60)
            sent, _ = upload(client, study_dir)
            assert sent.sent == args.slices and not sent.failed
            rows = client.query(QueryFilter(), "STUDY")
            study_uid = rows[0]["StudyInstanceUID"]

            t0 = time.perf_counter()
            pull(client, QueryFilter(study_uid=study_uid), tmp / "pull-only", progress=False)
            pull_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            report = segment_study(
                client, study_uid, model, tmp / "rt", store=True, device="cpu", progress=False
            )
            total = time.perf_counter() - t0
        finally:
            server.stop(timeout=15)
    for step, seconds in report.timings.items():
        print(f"  {step:<12} {seconds:7.2f} s")
    print(f"round trip {total:.1f} s end to end; pull alone {pull_s:.1f} s")
    print(f"RATIO roundtrip_vs_pull {total / pull_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

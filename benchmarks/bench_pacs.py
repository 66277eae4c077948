"""Pull a 300-slice 512x512 CT series from a local Orthanc: our ``pull()`` vs dcmtk ``getscu``.

A fresh Orthanc 1.10.1 (temporary folder, free ports, basic auth on its HTTP side, stopped at
the end even on error) is seeded with one CT series: pydicom's CT_small header with 512x512
int16 pixels (a smooth phantom plus seeded noise), explicit VR little endian, unique UIDs
(~157 MB). In the same run the series is then pulled into a fresh folder, ``--repeat`` times
each, round robin, by:

* ``getscu`` (dcmtk 3.6.7): one C-GET at SERIES level, files written straight to disk
  (``+B``), its largest PDU (``-pdu 131072``) and ``TCP_NODELAY=1`` (Debian's dcmtk keeps
  Nagle's algorithm on unless told: ~50 ms per instance), its fastest settings here;
* our ``pull()`` with ``DimseClient`` (C-GET) over ``--associations`` parallel associations,
  and over one: query the series and list its instances (C-FIND), retrieve, write each
  instance atomically through the journaled store;
* our ``pull()`` with ``DicomWebClient`` (QIDO-RS + WADO-RS of the whole series, basic auth).

Timings are wall clock of the whole command (our pulls include their C-FIND / QIDO-RS
queries; getscu's includes starting the process). Every run is checked afterwards, outside the
timing: all instances present, PixelData identical to what was uploaded. Prints instances/s
and MB/s per tool (median of ``--repeat``), what the instance listing that ``pull()`` does
first costs per protocol, ``RATIO pull_cget_vs_getscu <x>`` (parallel associations),
``RATIO pull_wado_vs_getscu <x>`` and, last, ``RATIO pull_vs_getscu <x>`` for our best
protocol. x = getscu time / our time (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from medai_lab.pacs import QueryFilter, pull
from medai_lab.pacs.auth import Auth
from medai_lab.pacs.dicomweb import DicomWebClient
from medai_lab.pacs.dimse import DimseClient
from medai_lab.pacs.server import OrthancServer

PATIENT = "BENCH-PACS-1"
USER = ("bench", "bench-pacs-pw")


def make_series(n: int, size: int, seed: int = 0) -> tuple[str, str, list[bytes], dict]:
    """``n`` Part 10 CT slices (bytes) of one series; SOP Instance UID -> PixelData."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID, ds.PatientName = PATIENT, "Bench^Pacs"
    ds.StudyInstanceUID = f"2.25.{uuid.uuid4().int}"
    ds.SeriesInstanceUID = f"2.25.{uuid.uuid4().int}"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    for tag in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        if tag in ds:
            del ds[tag]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    files, pixels = [], {}
    for i in range(n):
        z = 2 * i / max(1, n - 1) - 1
        body = (xx / 0.9) ** 2 + (yy / 0.7) ** 2 + (z / 1.1) ** 2 < 1
        organ = ((xx - 0.3) / 0.25) ** 2 + (yy / 0.3) ** 2 + (z / 0.6) ** 2 < 1
        img = np.where(body, 40.0, -1000.0) + np.where(organ, 60.0, 0.0)
        img += rng.normal(0, 20, img.shape)
        ds.PixelData = img.astype("<i2").tobytes()
        ds["PixelData"].VR = "OW"
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.SliceLocation = ds.ImagePositionPatient[2] = float(i)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append(buf.getvalue())
        pixels[ds.SOPInstanceUID] = ds.PixelData
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, files, pixels


def seed(orthanc: OrthancServer, files: list[bytes]) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda data: orthanc.rest("POST", "/instances", data=data), files))
    if orthanc.instance_count() != len(files):
        raise SystemExit(f"Orthanc holds {orthanc.instance_count()} instances, not {len(files)}")


def check(out: Path, pixels: dict[str, bytes], tool: str) -> int:
    """Bytes received; SystemExit unless every instance is there with identical PixelData."""
    import pydicom

    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    files = [p for p in files if p.parent.name != ".medai-pull"]
    got = {}
    for path in files:
        ds = pydicom.dcmread(path)
        got[str(ds.SOPInstanceUID)] = ds.PixelData
    if len(files) != len(pixels) or got.keys() != pixels.keys():
        raise SystemExit(f"{tool}: {len(files)} files, {len(got.keys() & pixels.keys())} wanted")
    bad = [uid for uid in pixels if got[uid] != pixels[uid]]
    if bad:
        raise SystemExit(f"{tool}: PixelData differs in {len(bad)} instances")
    return sum(p.stat().st_size for p in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instances", type=int, default=300)
    ap.add_argument("--size", type=int, default=512, help="rows = columns (default 512)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--associations", type=int, default=3, help="parallel C-GET associations")
    ap.add_argument("--workdir", default=None, help="default: a temporary folder")
    args = ap.parse_args()
    getscu = shutil.which("getscu")
    if getscu is None:
        raise SystemExit("getscu not found (Debian package dcmtk)")

    study, series, files, pixels = make_series(args.instances, args.size)
    with tempfile.TemporaryDirectory(prefix="bench-pacs-", dir=args.workdir) as tmp:
        work = Path(tmp)
        orthanc = OrthancServer(work / "orthanc", users=dict([USER]))
        try:
            orthanc.start()
            seed(orthanc, files)
            flt = QueryFilter(study_uid=study, series_uid=series)
            port, aet = orthanc.dicom_port, orthanc.aet
            cget = DimseClient("127.0.0.1", port, aet, associations=args.associations)
            cget1 = DimseClient("127.0.0.1", port, aet)
            wado = DicomWebClient(orthanc.dicomweb_url, auth=Auth.basic(*USER))

            def run_getscu(out: Path) -> None:
                cmd = [
                    getscu, "-S", "-aec", aet, "-aet", "GETSCU", "-od", str(out), "+B",
                    "-pdu", "131072", "-k", "QueryRetrieveLevel=SERIES",
                    "-k", f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={series}",
                    "127.0.0.1", str(port),
                ]  # fmt: skip
                out.mkdir(parents=True)
                env = {**os.environ, "TCP_NODELAY": "1"}
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)

            tools: dict[str, Callable[[Path], object]] = {
                "getscu": run_getscu,
                "cget": lambda out: pull(cget, flt, out, progress=False),
                "cget1": lambda out: pull(cget1, flt, out, progress=False),
                "wado": lambda out: pull(wado, flt, out, progress=False),
            }
            times: dict[str, list[float]] = {name: [] for name in tools}
            sizes: dict[str, int] = {}
            for r in range(args.repeat):
                for name, fn in tools.items():
                    out = work / f"{name}-{r}"
                    t0 = time.perf_counter()
                    fn(out)
                    times[name].append(time.perf_counter() - t0)
                    sizes[name] = check(out, pixels, name)
                    shutil.rmtree(out)
            listing = {}  # the instance listing pull() does before retrieving
            for name, client in (("C-FIND IMAGE", cget1), ("QIDO-RS instances", wado)):
                runs = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    if len(client.instances(study, series)) != len(files):
                        raise SystemExit(f"{name} does not list {len(files)} instances")
                    runs.append(time.perf_counter() - t0)
                listing[name] = statistics.median(runs)
        finally:
            orthanc.stop()

    n = args.instances
    med = {name: statistics.median(t) for name, t in times.items()}
    labels = {
        "getscu": "dcmtk getscu 3.6.7 (C-GET, +B, -pdu 131072)",
        "cget": f"medai-lab pull, C-GET, {args.associations} associations",
        "cget1": "medai-lab pull, C-GET, 1 association",
        "wado": "medai-lab pull, WADO-RS (series)",
    }
    print(
        f"{n} CT instances {args.size}x{args.size} int16, explicit VR LE "
        f"({sizes['getscu'] / 1e6:.0f} MB), Orthanc 1.10.1 on loopback, median of {args.repeat}"
    )
    for name, t in med.items():
        spread = ", ".join(f"{x:.2f}" for x in times[name])
        print(
            f"  {labels[name]:<44} {t:6.2f} s  {n / t:7.1f} inst/s  "
            f"{sizes[name] / 1e6 / t:6.1f} MB/s  (runs: {spread})"
        )
    print("  of which the instance listing pull() does first (client.instances):")
    for name, t in listing.items():
        print(f"    {name:<42} {t:6.2f} s")
    print(f"RATIO pull_cget_vs_getscu {med['getscu'] / med['cget']:.2f}")
    print(f"RATIO pull_wado_vs_getscu {med['getscu'] / med['wado']:.2f}")
    best = min(med["cget"], med["wado"])
    print(f"RATIO pull_vs_getscu {med['getscu'] / best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

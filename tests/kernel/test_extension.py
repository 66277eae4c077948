"""The IPython extension in a real InteractiveShell: magics, formatters, what loading imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from medai_lab.kernel import state

HEAVY = ("torch", "monai", "mlflow", "matplotlib", "pandas", "numpy", "pydicom", "PIL", "anywidget",
         "nibabel", "medai_lab.io", "medai_lab.widgets", "medai_lab.tracking")  # fmt: skip


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "medai_lab")
    state.SHOW_PHI = False
    try:
        yield shell
    finally:
        state.SHOW_PHI = False
        shell.extension_manager.unload_extension("medai_lab")


def test_loading_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "before = set(sys.modules)\n"
        "ip.run_line_magic('load_ext', 'medai_lab')\n"
        "assert 'medai' in ip.magics_manager.magics['line']\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == [], f"loading the extension imported {heavy}"


def _ct_small():
    import pydicom
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def test_dataset_is_masked_unless_asked(ip: InteractiveShell, capsys) -> None:
    ds = _ct_small()
    name, pid = str(ds.PatientName), str(ds.PatientID)
    data, _meta = ip.display_formatter.format(ds)
    for mime in ("text/html", "text/plain"):
        assert name not in data[mime] and pid not in data[mime], mime
    html = data["text/html"]
    assert "PatientName" in html and "masked" in html
    assert "CT" in html and "RHAPSODE" in html  # what is not identifying stays readable
    assert "(0010,0010)" in html and "all attributes" in html
    ip.run_line_magic("medai", "phi on")
    data, _ = ip.display_formatter.format(ds)
    assert name in data["text/html"] and pid in data["text/plain"]
    ip.run_line_magic("medai", "phi off")
    data, _ = ip.display_formatter.format(ds)
    assert name not in data["text/html"]
    assert "masked" in capsys.readouterr().out


def test_volume_shows_three_planes(ip: InteractiveShell, shared_data: Path) -> None:
    import base64
    import io

    from PIL import Image

    from medai_lab.io import load_nifti

    vol = load_nifti(shared_data / "ct_abdomen_small" / "image.nii.gz")
    data, _ = ip.display_formatter.format(vol)
    png = data["image/png"]
    raw = base64.b64decode(png) if isinstance(png, str) else png
    img = Image.open(io.BytesIO(raw))
    assert img.format == "PNG" and img.width > 2 * img.height
    assert max(img.convert("L").getextrema()) > 100  # not a black picture
    assert "text/plain" in data


def test_gpu_magic(ip: InteractiveShell, capsys) -> None:
    ip.run_line_magic("medai", "gpu")
    out = capsys.readouterr().out
    assert out.startswith(("CPU only", "GPU"))


def test_gpu_report_says_why_the_hub_gave_no_gpu(monkeypatch) -> None:
    from medai_lab.kernel.magics import gpu_report

    status = {"cpu_only": True, "gpus": [], "driver": None, "error": None}
    assert gpu_report(status).startswith("CPU only: no NVIDIA GPU")
    monkeypatch.setenv("MEDAI_GPU_MESSAGE", "All 2 GPUs are in use; this server runs on the CPU.")
    assert gpu_report(status) == "All 2 GPUs are in use; this server runs on the CPU."
    gpu = {"index": 0, "uuid": "GPU-x", "name": "NVIDIA H100", "memory_total": 80 * 1024**3,
           "memory_used": 8 * 1024**3, "utilization": 12, "processes": []}  # fmt: skip
    monkeypatch.setenv("MEDAI_GPU_MEMORY_FRACTION", "0.25")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    report = gpu_report({"cpu_only": False, "gpus": [gpu], "driver": "550.54", "error": None})
    assert "GPU0 NVIDIA H100: 8.0/80.0 GB" in report and "share" in report and "25%" in report


def test_help_and_unknown(ip: InteractiveShell, capsys) -> None:
    ip.run_line_magic("medai", "")
    ip.run_line_magic("medai", "frobnicate")
    out = capsys.readouterr().out
    assert out.count("%medai runs") == 2


def test_view_magic(ip: InteractiveShell, shared_data: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("anywidget")
    monkeypatch.chdir(shared_data / "ct_abdomen_small")
    widget = ip.run_line_magic("medai", "view image.nii.gz")
    assert widget.meta["shape"] == [122, 101, 30]
    ip.user_ns["arr_volume"] = widget.scene.image
    again = ip.run_line_magic("medai", "view arr_volume")
    assert again.meta["shape"] == [122, 101, 30]
    assert ip.run_line_magic("medai", "view no/such.nii.gz") is None
    assert "no such file" in capsys.readouterr().out


def test_runs_magic_on_a_real_store(ip: InteractiveShell, tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("mlflow")
    from medai_lab.tracking.store import get_or_create_experiment, make_client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert ip.run_line_magic("medai", "runs") is None
    assert "no runs yet" in capsys.readouterr().out
    client = make_client(uri)
    exp = get_or_create_experiment(client, "liver", uri)
    for i, dice in enumerate((0.61, 0.72)):
        run = client.create_run(exp, run_name=f"liver-{i}")
        client.log_metric(run.info.run_id, "val_dice", dice)
        client.set_terminated(run.info.run_id)
    other = get_or_create_experiment(client, "lung", uri)
    client.create_run(other, run_name="lung-0")
    table = ip.run_line_magic("medai", "runs liver")
    assert list(table["run"]) == ["liver-1", "liver-0"]
    assert list(table["val_dice"]) == [0.72, 0.61]
    assert set(table["experiment"]) == {"liver"}
    assert len(ip.run_line_magic("medai", "runs -n 1")) == 1
    assert ip.run_line_magic("medai", "runs nope") is None
    assert "no experiment 'nope'" in capsys.readouterr().out

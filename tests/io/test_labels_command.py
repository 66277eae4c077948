"""``medai-lab seg --rtstruct``: a label map to an RTSTRUCT that our reader (and discovery)
give back voxel for voxel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medai_lab.cli import main
from medai_lab.io import discover_series, load_nifti, load_series, read_rtstruct


def test_seg_command_writes_rtstruct(tmp_path: Path, capsys) -> None:
    from medai_lab.datasets.phantom import write_phantom_dataset

    data = write_phantom_dataset(tmp_path / "d", "lung", 1, fmt="dicom", progress=False)
    series = data / "imagesTr" / "lung_000"
    labels = data / "labelsTr" / "lung_000.nii.gz"
    out = series / "rtss.dcm"
    args = ["seg", str(labels), "--reference", str(series), "--out", str(out), "--rtstruct"]
    assert main([*args, "--labels", "1=Lung", "2=Nodule_1"]) == 0
    assert "RTSTRUCT with 2 ROI(s): Lung, Nodule_1" in capsys.readouterr().out
    report = discover_series(series)
    assert [o.kind for o in report.labels] == ["RTSTRUCT"] and report.series_index(
        report.labels[0]
    ) == 0
    result = read_rtstruct(out, load_series(series), labels={1: "lung", 2: "nodule"})
    np.testing.assert_array_equal(result.volume.array, load_nifti(labels).array)
    assert main(args) == 2  # exists: refused without --overwrite
    assert "exists" in capsys.readouterr().err

"""Label map -> RTSTRUCT: exact round trip (ours and plastimatch), valid per dciodvfy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rtstruct_helpers import dice, plastimatch_rasterise, resample_same_grid
from testsupport import missing_component

from medai_lab.errors import MedaiError
from medai_lab.io import Volume, load_nifti, load_series, write_dicom_series
from medai_lab.io.rtstruct import read_rtstruct, rtstruct_references
from medai_lab.io.rtstruct_write import slice_loops, write_rtstruct
from medai_lab.io.structures import match_structure


@pytest.fixture(scope="module")
def dciodvfy() -> str:
    exe = shutil.which("dciodvfy")
    if exe is None:
        missing_component("dciodvfy (Debian package dicom3tools)")
    return exe


def validate(dciodvfy: str, path: Path) -> None:
    proc = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, check=False)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "Error" in line]
    assert not errors, errors


def tricky_labels(shape: tuple[int, int, int]) -> np.ndarray:
    """Holes, an island in a hole, diagonal-only neighbours, single voxels, touching labels."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    r = np.hypot(i - shape[0] / 2, j - shape[1] / 2)
    lab = np.zeros(shape, np.uint8)
    inner = (k > 2) & (k < shape[2] - 3)
    lab[(r < 20) & inner] = 1
    lab[(r < 12) & inner] = 0  # hole
    lab[(r < 5) & inner] = 1  # island in the hole
    lab[(r >= 20) & (r < 23) & inner] = 2  # a ring touching label 1
    checker = ((i + j) % 2 == 0) & (i < 8) & (j < 8) & (k == 4)
    lab[checker] = 3  # diagonal neighbours only
    lab[shape[0] - 2, shape[1] - 2, 1] = 4  # a single voxel
    return lab


@pytest.fixture
def grid(tmp_path) -> Volume:
    affine = np.diag([-0.9, -0.8, 2.5, 1.0])
    affine[:3, 3] = [25.0, 30.0, -40.0]
    write_dicom_series(Volume(np.zeros((60, 52, 14), np.int16), affine), tmp_path / "ct")
    return load_series(tmp_path / "ct")


@pytest.mark.needs("plastimatch")
@pytest.mark.needs("dciodvfy")
def test_phantom_round_trip_is_exact_in_ours_and_plastimatch(grid, tmp_path, plastimatch, dciodvfy):
    lab = tricky_labels(grid.shape)
    names = {1: "liver", 2: "Ring", 3: "Checker", 4: "Dot"}
    out = write_rtstruct(
        Volume(lab, grid.affine), tmp_path / "ct", tmp_path / "rs.dcm", names=names
    )
    validate(dciodvfy, out)
    back = read_rtstruct(out, grid)
    assert back.labels == names and np.array_equal(back.volume.array, lab)
    ref = plastimatch_rasterise(plastimatch, out, tmp_path / "ct", grid, tmp_path / "pm", xor=True)
    for value, name in names.items():
        assert dice(ref[name], lab == value) >= 0.99, name
    refs = rtstruct_references(out)
    assert refs["frame_of_reference_uid"] == grid.meta["frame_of_reference_uid"]
    assert refs["series_uids"] == [grid.meta["series_uid"]]
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@pytest.mark.needs("dciodvfy")
def test_real_ct_label_map_round_trip(shared_data, tmp_path, dciodvfy):
    src = shared_data / "ct_series_basel"
    write_dicom_series(load_series(src / "dicom"), tmp_path / "ct", uid_seed="basel-write")
    grid = load_series(tmp_path / "ct")
    seg = load_nifti(src / "segmentation.nii.gz")
    arr = resample_same_grid(np.asarray(seg.array), seg.affine, grid)
    names = {int(k): v for k, v in json.loads((src / "labels.json").read_text()).items()}
    keep = [v for v in (5, 1, 6, 52, 79) if (arr == v).any()]  # liver, spleen, stomach ...
    lab = np.where(np.isin(arr, keep), arr, 0).astype(np.uint8)
    out = write_rtstruct(
        Volume(lab, grid.affine), tmp_path / "ct", tmp_path / "rs.dcm", names=names
    )
    validate(dciodvfy, out)
    back = read_rtstruct(out, grid)
    assert sorted(back.labels.values()) == sorted(names[v] for v in keep)
    remap = {v: names[v] for v in keep}
    for value, name in back.labels.items():
        original = next(v for v, n in remap.items() if n == name)
        assert np.array_equal(back.volume.array == value, lab == original), name


def test_known_structures_carry_their_code(grid, tmp_path):
    import pydicom

    lab = tricky_labels(grid.shape)
    out = write_rtstruct(
        Volume(lab, grid.affine),
        tmp_path / "ct",
        tmp_path / "rs.dcm",
        names={1: "Liver", 2: "Ring"},
    )
    ds = pydicom.dcmread(out)
    obs = {o.ReferencedROINumber: o for o in ds.RTROIObservationsSequence}
    liver = obs[1].RTROIIdentificationCodeSequence[0]
    assert liver.CodeValue == match_structure("liver").code.value
    assert "RTROIIdentificationCodeSequence" not in obs[2]
    assert {r.ROIName for r in ds.StructureSetROISequence} == {
        "Liver",
        "Ring",
        "label_3",
        "label_4",
    }


def test_loops_keep_diagonal_neighbours_apart_and_holes_reversed():
    m = np.zeros((7, 7), bool)
    m[1, 1] = m[2, 2] = True
    m[3:7, 3:7] = True
    m[4:6, 4:6] = False
    loops = slice_loops(m)

    def area(p: np.ndarray) -> float:
        x, y = p[:, 0], p[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    areas = sorted(area(p) for p in loops)
    assert areas == [-4.0, 1.0, 1.0, 16.0]  # hole runs the other way round


def test_bad_label_maps_are_refused(grid, tmp_path):
    lab = tricky_labels(grid.shape)
    shifted = grid.affine.copy()
    shifted[:3, 3] += 0.4
    with pytest.raises(MedaiError, match="grid"):
        write_rtstruct(Volume(lab, shifted), tmp_path / "ct", tmp_path / "a.dcm")
    with pytest.raises(MedaiError, match="integer"):
        write_rtstruct(Volume(lab.astype(float), grid.affine), tmp_path / "ct", tmp_path / "b.dcm")
    with pytest.raises(MedaiError, match="number of slices"):
        write_rtstruct(Volume(lab[:, :, :-1], grid.affine), tmp_path / "ct", tmp_path / "c.dcm")
    assert not (tmp_path / "a.dcm").exists() and not (tmp_path / "b.dcm").exists()

"""The viewer's kernel side of annotation: edit messages land in ``viewer.labels`` (a copy),
are streamed to new views, saved as NIfTI (image geometry) or DICOM SEG, and measured."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.io import Volume
from medai_lab.widgets import view
from medai_lab.widgets.edits import apply_edit, edit_message
from medai_lab.widgets.labels import window_presets
from medai_lab.widgets.transport import decode

pytest.importorskip("anywidget")


def needs_bundle() -> None:
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()


def lps_volume(shape=(20, 16, 12)) -> Volume:
    """A CT-like image stored LPS (columns toward patient left): the viewer reorients it."""
    rng = np.random.default_rng(0)
    arr = rng.normal(40, 20, shape).astype(np.int16)
    arr[:4] = -1000
    affine = np.diag([-0.8, -0.7, 2.5, 1.0])
    affine[:3, 3] = [10.0, -5.0, 30.0]
    return Volume(arr, affine, {"modality": "CT"})


def send_edit(viewer, groups, axis=0, seq=1) -> None:
    content, data = edit_message(groups, viewer.scene.image.shape, axis=axis, seq=seq)
    viewer._on_message(viewer, content, [memoryview(data)])


def flat(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask.ravel(order="F"))


def test_edits_change_a_copy_exactly_where_sent() -> None:
    needs_bundle()
    image = lps_volume()
    given = np.zeros(image.shape, np.int32)
    given[5:8, 5:8, 5] = 2
    kept = given.copy()
    w = view(image, labels=Volume(given, image.affine), label_names={1: "liver", 2: "spleen"})
    assert [d["name"] for d in w.meta["dictionary"]] == ["liver", "spleen"]
    box = np.zeros(image.shape, bool)
    box[2:6, 3:9, 4:6] = True
    send_edit(w, [(1, flat(box))], axis=1, seq=1)
    assert w.edit_seq == 1
    labels = w.labels
    assert np.array_equal(given, kept)  # the caller's array is not written
    assert (labels[box] == 1).all()
    assert set(np.unique(labels[~box])) == {0, 2} and (labels[~box] == 2).sum() == 9
    send_edit(w, [(0, flat(box))], seq=2)  # an undo, as the browser sends it
    assert w.edit_seq == 2 and (labels == 2).sum() == 9 and (labels == 1).sum() == 0
    assert w.annotations.bytes > 0 and w.annotations.voxels == 2 * box.sum()


def test_a_bad_edit_is_refused_and_nothing_changes() -> None:
    needs_bundle()
    w = view(lps_volume())
    before = w.labels.copy()
    w._on_message(w, {"type": "edit", "seq": 1, "axis": 0, "groups": [[1, 5]]}, [b"\0" * 8])
    assert w.edit_seq == 0 and "runs sent" in w.annotations.error
    assert np.array_equal(w.labels, before)


def test_a_new_view_receives_the_edited_labels() -> None:
    needs_bundle()
    w = view(lps_volume(), label_names={3: "tumour"})
    box = np.zeros(w.scene.image.shape, bool)
    box[8:12, 2:5, 3] = True
    send_edit(w, [(3, flat(box))])
    got: dict = {}

    def send(content, buffers):
        key = (content["volume"], content["level"])
        if content["type"] == "begin":
            got[key] = (content, [])
        elif content["type"] == "chunk":
            got[key][1].append((content, buffers[0]))

    w.stream(send)
    assert np.array_equal(decode(*got[("labels", 0)]), np.where(box, 3, 0))


def test_save_nifti_keeps_the_world_position_of_each_voxel(tmp_path: Path) -> None:
    import nibabel as nib

    needs_bundle()
    image = lps_volume()
    w = view(image)
    mask = np.zeros(w.scene.image.shape, bool)
    mask[3:7, 2:4, 6] = True
    send_edit(w, [(4, flat(mask))])
    out = w.save(tmp_path / "labels.nii.gz")
    saved = nib.load(out)
    data = np.asanyarray(saved.dataobj)
    assert data.shape == image.shape and set(np.unique(data)) == {0, 4}
    # Each labelled voxel sits at the same world position as the viewer's voxel it came from.
    ijk_saved = np.argwhere(data == 4)
    world = nib.affines.apply_affine(saved.affine, ijk_saved)
    ijk_view = np.argwhere(mask)
    want = nib.affines.apply_affine(w.scene.image.affine, ijk_view)
    assert np.allclose(np.sort(world, axis=0), np.sort(want, axis=0), atol=1e-4)
    # And on the original (LPS) image grid: those positions are voxels of the input.
    back = np.rint(nib.affines.apply_affine(np.linalg.inv(image.affine), world)).astype(int)
    assert (back >= 0).all() and (back < np.array(image.shape)).all()
    with pytest.raises(MedaiError, match="neither"):
        w.save(tmp_path / "labels.mha")
    with pytest.raises(MedaiError, match="DICOM series"):
        w.save(tmp_path / "labels.dcm")  # an array has no DICOM series to reference


def test_save_dicom_seg_reads_back_onto_the_series(tmp_path: Path) -> None:
    needs_bundle()
    from medai_lab.io import load_series, read_seg, write_dicom_series

    dicom = tmp_path / "series"
    write_dicom_series(lps_volume((40, 36, 12)), dicom, uid_seed="annotate-test")
    w = view(dicom, label_names={1: "liver", 2: "spleen"})
    shape = w.scene.image.shape
    liver = np.zeros(shape, bool)
    liver[10:25, 8:20, 3:7] = True
    spleen = np.zeros(shape, bool)
    spleen[30:36, 2:9, 9] = True
    send_edit(w, [(1, flat(liver)), (2, flat(spleen))])
    out = w.save(tmp_path / "seg.dcm")
    got = read_seg(out, load_series(dicom))
    names = {v: n.lower() for v, n in got.labels.items()}
    assert sorted(names.values()) == ["liver", "spleen"]
    ras = got.volume.to_ras()
    assert np.allclose(ras.affine, w.scene.image.affine, atol=1e-3)
    by_name = {n: v for v, n in names.items()}
    assert np.array_equal(ras.array == by_name["liver"], liver)
    assert np.array_equal(ras.array == by_name["spleen"], spleen)


def test_stats_match_a_direct_computation() -> None:
    needs_bundle()
    image = lps_volume()
    w = view(image, label_names={1: "liver", 7: "cyst"})
    rng = np.random.default_rng(3)
    a = rng.random(w.scene.image.shape) < 0.1
    b = (rng.random(w.scene.image.shape) < 0.05) & ~a
    send_edit(w, [(1, flat(a)), (7, flat(b))])
    rows = {r["value"]: r for r in w.stats()}
    assert sorted(rows) == [1, 7]
    img = w.scene.image.array.astype(np.float64)
    voxel_ml = 0.8 * 0.7 * 2.5 / 1000
    for value, mask, name in ((1, a, "liver"), (7, b, "cyst")):
        r = rows[value]
        assert r["name"] == name and r["voxels"] == mask.sum()
        assert r["volume_ml"] == pytest.approx(mask.sum() * voxel_ml)
        assert r["mean"] == pytest.approx(img[mask].mean())
        assert r["sd"] == pytest.approx(img[mask].std(), rel=1e-6)
        assert (r["min"], r["max"]) == (img[mask].min(), img[mask].max())


def test_every_preset_of_the_data_file_opens() -> None:
    needs_bundle()
    presets = window_presets()
    for name in ("abdomen", "brain", "stroke", "subdural", "lung", "mediastinum", "liver",
                 "bone", "soft_tissue"):  # fmt: skip
        assert name in presets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, window in presets.items():
            w = view(lps_volume(), preset=name)
            assert w.preset == name and w.window == list(window)
    with pytest.raises(ValueError, match="unknown preset"):
        view(lps_volume(), preset="abdomn")


def test_paint_from_python_reaches_open_views(monkeypatch: pytest.MonkeyPatch) -> None:
    needs_bundle()
    w = view(lps_volume())
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))
    mask = np.zeros(w.scene.image.shape, bool)
    mask[2:9, 4:6, 1:3] = True
    assert w.paint(mask, 300) == 7 * 2 * 2
    assert (w.labels[mask] == 300).all() and (w.labels[~mask] == 0).all()
    ((content, buffers),) = sent
    assert content["origin"] == "kernel"
    view_copy = np.zeros(mask.shape, np.uint16)  # what an open view applies
    apply_edit(view_copy, content, buffers[0])
    assert np.array_equal(view_copy, np.where(mask, 300, 0))
    with pytest.raises(MedaiError, match="not the image grid"):
        w.paint(mask[:, :, :2], 1)

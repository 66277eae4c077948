"""The viewer widget in the kernel: traits, streaming on request, static PNG, case browser."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.widgets import case_browser, scene_of, view
from medai_lab.widgets.labels import window_presets
from medai_lab.widgets.transport import decode

pytest.importorskip("anywidget")


def needs_bundle() -> None:
    from medai_lab.widgets.api import _viewer_class

    _viewer_class()  # a missing bundle is a failure: `make install` builds it


@pytest.fixture(scope="module")
def basel(shared_data: Path):
    needs_bundle()
    folder = shared_data / "ct_series_basel"
    return view(folder / "dicom", labels=folder / "segmentation.nii.gz")


def recorded(viewer) -> dict:
    got: dict = {}

    def send(content, buffers):
        key = (content["volume"], content["level"])
        if content["type"] == "begin":
            got[key] = (content, [])
        elif content["type"] == "chunk":
            got[key][1].append((content, buffers[0]))

    viewer.stream(send)
    return got


def test_traits_describe_the_real_ct(basel) -> None:
    m = basel.meta
    assert m["shape"] == [512, 512, 20] and m["modality"] == "CT" and m["dtype"] == "int16"
    assert m["volumes"] == ["image", "labels", "labels3d"]
    assert np.allclose(m["spacing"], [0.977, 0.977, 2.0], atol=1e-3)
    assert np.allclose(np.asarray(m["affine"])[:3, :3].diagonal() > 0, True)  # RAS+ sent
    names = {t["value"]: t["name"] for t in m["labels"]}
    assert names[5] == "liver" and names[1] == "spleen"
    assert basel.preset == "liver" and basel.window == [400.0, 50.0]  # auto: CT soft tissue
    assert basel.overlay_mode == "labels"
    assert basel.scene.labels[tuple(basel.cursor)] != 0 or basel.scene.labels.any()
    basel.preset = "lung"
    assert basel.window == list(window_presets()["lung"])
    basel.preset = "liver"


def test_stream_carries_image_and_labels_exactly(basel) -> None:
    got = recorded(basel)
    image = decode(*got[("image", 0)])
    assert np.array_equal(image, basel.scene.image.array)
    assert np.array_equal(decode(*got[("labels", 0)]), basel.scene.labels)
    assert ("image", 1) in got  # 5 M voxels: a preview goes first
    small = decode(*got[("labels3d", 0)])
    assert max(small.shape) <= 128 and set(np.unique(small)) <= set(np.unique(basel.scene.labels))


def test_ready_message_starts_a_stream(basel, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = []
    monkeypatch.setattr(basel, "send", lambda content, buffers=None: sent.append(content["type"]))
    basel._handle_custom_msg({"type": "ready"}, [])
    deadline = time.monotonic() + 60
    while (not sent or sent[-1] != "end" or sent.count("end") < 4) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent[0] == "begin" and sent.count("end") == 4  # preview, labels, labels3d, image


def png_of(viewer) -> np.ndarray:
    import matplotlib.image

    bundle = viewer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    return matplotlib.image.imread(io.BytesIO(base64.b64decode(data["image/png"])))


def test_static_png_shows_the_liver_on_the_screen_left(basel) -> None:
    rgb = (png_of(basel)[..., :3] * 255).astype(int)
    third = rgb.shape[1] // 3
    liver = np.array(next(t["color"] for t in basel.meta["labels"] if t["value"] == 5))
    expected = 0.5 * liver  # blended at opacity 0.5 over grey
    axial = rgb[:, :third]
    # A blended liver pixel: grey g -> 0.5 g + 0.5 colour, so (pixel - colour/2) is grey.
    rest = axial - expected
    near_grey = (np.ptp(rest, axis=2) <= 3) & (rest.min(axis=2) >= -2)
    tinted = near_grey & (np.ptp(axial, axis=2) > 20)
    cols = np.nonzero(tinted)[1]
    assert cols.size > 200
    assert np.median(cols) < third / 2  # patient right (liver) on the left in radiological


def test_compare_mode_colours_tp_fp_fn(shared_data: Path) -> None:
    needs_bundle()
    folder = shared_data / "ct_series_basel"
    truth = scene_of(folder / "dicom", folder / "segmentation.nii.gz").labels
    prediction = np.roll(truth == 5, 6, axis=0).astype(np.uint8)  # shifted liver
    v = view(folder / "dicom", labels=(truth == 5).astype(np.uint8), prediction=prediction)
    assert v.overlay_mode == "compare"
    rgb = (png_of(v)[..., :3] * 255).astype(int)
    for colour in ([0, 200, 0], [230, 40, 40], [40, 120, 255]):
        tint = 0.5 * np.array(colour)
        rest = rgb - tint
        assert ((np.ptp(rest, axis=2) <= 3) & (rest.min(axis=2) >= -2) & (rgb.sum(2) > 0)).sum()


def test_missing_bundle_and_unknown_backend_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import medai_lab.widgets.viewer as viewer_module

    arr = np.zeros((8, 8, 8), np.int16)
    monkeypatch.setattr(viewer_module, "BUNDLE", Path("/nonexistent/viewer.js"))
    with pytest.raises(MedaiError, match=r"bundle is missing.*make install"):
        view(arr, spacing=1)
    with pytest.raises(MedaiError, match="unknown backend"):
        view(arr, spacing=1, backend="vtk")
    with pytest.raises(ValueError, match="unknown preset"):
        monkeypatch.undo()
        view(arr, spacing=1, preset="brian")


def test_case_browser_opens_the_worst_case_first(tmp_path: Path) -> None:
    needs_bundle()
    from scipy import ndimage

    from medai_lab.datasets.phantom import write_phantom_dataset
    from medai_lab.evaluation.report import evaluate_dirs
    from medai_lab.io import load_nifti, save_nifti

    data = write_phantom_dataset(tmp_path / "ds", "liver", 3, shape=(48, 48, 24), progress=False)
    pred = tmp_path / "pred"
    pred.mkdir()
    for n, path in enumerate(sorted((data / "labelsTr").glob("*.nii.gz"))):
        truth = load_nifti(path)
        eroded = ndimage.binary_erosion(truth.array > 0, iterations=n + 1)
        save_nifti(type(truth)(eroded.astype(np.uint8), truth.affine), pred / path.name)
    report = evaluate_dirs(pred, data / "labelsTr", out_csv=tmp_path / "r.csv", progress=False)
    box = case_browser(tmp_path / "r.csv", data / "imagesTr", data / "labelsTr", pred)
    worst = report.groupby("case")["dice"].mean().idxmin()
    assert box.picker.value == worst == "liver_002"
    assert box.viewer.overlay_mode == "compare"
    box.picker.value = "liver_000"
    assert box.viewer.meta["title"] == "liver_000"
    assert np.array_equal(box.viewer.scene.prediction > 0,
                          scene_of(pred / "liver_000.nii.gz").image.array > 0)  # fmt: skip
    with pytest.raises(MedaiError, match="no column"):
        case_browser({"case": ["a"]}, data / "imagesTr")

"""A trained or exported template model as the assist model: loaded from a path, resampled to
its spacing, normalised by its contract, the clicked structure proposed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from medai_lab.errors import MedaiError
from medai_lab.widgets.assist import propose

torch = pytest.importorskip("torch")

CONTRACT = {
    "task": "liver",
    "patch_size": [32, 32, 32],
    "in_channels": 1,
    "spacing": [2.0, 2.0, 2.0],
    "intensity": {"mode": "ct_window", "a_min": -150, "a_max": 250},
    "labels": {"1": "liver", "2": "tumour"},
    "inference": {"sw_batch_size": 2, "overlap": 0.25, "mode": "gaussian"},
}


class Threshold(torch.nn.Module):
    """A network that knows one rule: windowed intensity above 0.5 (50 HU) is liver."""

    def forward(self, x):
        liver = (x - 0.5) * 20
        return torch.cat([-liver, liver, torch.full_like(x, -50.0)], dim=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medai_lab.export import export_model

    out = tmp_path_factory.mktemp("model") / "liver.ts"
    return export_model(Threshold(), CONTRACT, out, "torchscript").model


def two_blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-100 HU background with two 200 HU balls: (image, first ball, second ball)."""
    grid = np.indices((64, 64, 48)).astype(float)
    first = ((grid - np.array([20, 20, 24])[:, None, None, None]) ** 2).sum(0) < 8**2
    second = ((grid - np.array([46, 44, 24])[:, None, None, None]) ** 2).sum(0) < 7**2
    image = np.full(first.shape, -100, np.int16)
    image[first | second] = 200
    return image, first, second


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_a_click_proposes_the_structure_under_it_at_the_image_spacing(exported: Path) -> None:
    image, first, second = two_blobs()
    kept = image.copy()
    # The image has 1 mm voxels, the model 2 mm: the region is resampled there and back.
    origin, mask = propose(image, [[20, 20, 24]], exported, roi=(64, 64, 48), spacing=(1, 1, 1))
    assert origin == (0, 0, 0)
    assert dice(mask, first) > 0.9
    assert not (mask & second).any()  # the other ball is not the clicked structure
    _, other = propose(image, [[46, 44, 24]], str(exported), roi=(64, 64, 48), spacing=(1, 1, 1))
    assert dice(other, second) > 0.9 and not (other & first).any()
    assert np.array_equal(image, kept)


def test_the_model_is_loaded_once_per_file(exported: Path) -> None:
    from medai_lab.widgets.assist_model import load_assist

    assert load_assist(exported) is load_assist(str(exported))


@pytest.mark.parametrize(
    ("source", "message"),
    [("no/such/run", "no such run folder"), (42, "callable or a model path, not int")],
)
def test_bad_model_sources_say_why_in_one_line(source, message) -> None:
    with pytest.raises(MedaiError, match=message) as err:
        propose(np.zeros((8, 8, 8), np.int16), [[4, 4, 4]], source, roi=(8, 8, 8))
    assert "\n" not in str(err.value)


def test_the_viewer_takes_a_model_path(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("anywidget")
    from medai_lab.io import Volume
    from medai_lab.widgets import view
    from medai_lab.widgets.edits import expand_runs

    image, first, _ = two_blobs()
    w = view(Volume(image, np.diag([2.0, 2.0, 2.0, 1.0]), {}), assist=exported)
    sent: list = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))
    w._on_message(w, {"type": "propose", "id": 1, "clicks": [[20, 20, 24]]}, [])
    deadline = time.monotonic() + 60
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    content, buffers = sent.pop()
    assert "error" not in content, content.get("error")
    runs = np.frombuffer(buffers[0], "<u4").reshape(-1, 2)
    flat = expand_runs(runs, image.shape, content["axis"])
    proposed = np.zeros(image.size, bool)
    proposed[flat] = True
    assert dice(proposed.reshape(image.shape, order="F"), first) > 0.95

"""The anywidget viewer: traits mirror PROTOCOL.md; volumes stream on the front end's request."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from medai_lab.widgets import transport
from medai_lab.widgets.annotate import Annotations
from medai_lab.widgets.autowindow import choose_window
from medai_lab.widgets.labels import window_presets
from medai_lab.widgets.measure import measurements
from medai_lab.widgets.render import colour_lut as colour_lut_table
from medai_lab.widgets.scene import Scene

BUNDLE = Path(__file__).with_name("static") / "viewer.js"
# Traits the browser writes too: no echo, or an echo of an older cursor arriving after newer key
# presses were made locally would pull the slice back.
BROWSER = {"sync": True, "echo_update": False}
TOOLS = ("navigate", "paint", "erase", "grow", "assist", "ruler")


class Viewer(anywidget.AnyWidget):
    """Three planes and 3D of one image with label / prediction overlays, sliced in the browser."""

    _esm = BUNDLE
    meta = t.Dict().tag(sync=True)
    window = t.List(t.Float(), default_value=[400.0, 50.0]).tag(**BROWSER)
    preset = t.Unicode("auto").tag(**BROWSER)
    cursor = t.List(t.Int(), default_value=[0, 0, 0]).tag(**BROWSER)
    # Not `layout`: ipywidgets' DOMWidget.layout is the CSS Layout widget.
    pane_layout = t.Enum(["three", "axial", "coronal", "sagittal"], "three").tag(**BROWSER)
    convention = t.Enum(["radiological", "neurological"], "radiological").tag(**BROWSER)
    overlay_mode = t.Enum(["labels", "prediction", "compare", "none"], "labels").tag(**BROWSER)
    opacity = t.Float(0.5, min=0.0, max=1.0).tag(**BROWSER)
    outline = t.Bool(False).tag(**BROWSER)
    hidden_labels = t.List(t.Int()).tag(**BROWSER)
    show_3d = t.Bool(True).tag(**BROWSER)
    status = t.Dict().tag(**BROWSER)
    # Editing (PROTOCOL.md "Editing"): the tool, the label painted, the brush (radius in mm).
    tool = t.Enum(TOOLS, "navigate").tag(**BROWSER)
    active_label = t.Int(1, min=1, max=65535).tag(**BROWSER)
    brush_radius = t.Float(3.0, min=0.0, max=200.0).tag(**BROWSER)
    brush_3d = t.Bool(False).tag(**BROWSER)
    brush_in_window = t.Bool(False).tag(**BROWSER)
    grow_tolerance = t.Float(100.0, min=0.0).tag(**BROWSER)  # region grow: |value - seed|
    edit_seq = t.Int(0).tag(sync=True)  # the last edit the kernel applied (Py -> JS)
    frame = t.Int(0, min=0).tag(**BROWSER)  # volume of a 4-D series shown

    def __init__(self, scene: Scene, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.on_msg(self._on_message)
        self.scene = scene
        self.annotations = Annotations(scene)
        self.assist: Any = None  # model(image_roi, clicks) -> mask (medai_lab.widgets.assist)
        self.assist_roi: tuple[int, int, int] = (96, 96, 96)
        self.proposals = 0
        self.measurements: list[dict[str, Any]] = []  # the browser's ruler (PROTOCOL.md)
        self._show(scene, kwargs)

    def update(self, scene: Scene, **kwargs: Any) -> None:
        """Show another image (a case browser moves on); open views reload."""
        self.scene = scene
        self.annotations = Annotations(scene)
        self._show(scene, kwargs)
        self._stream_async()

    def _show(self, scene: Scene, kwargs: dict[str, Any]) -> None:
        preset, window = (kwargs.get("preset") or self.preset), None
        if preset == "auto":
            preset, window = choose_window(scene)
        elif preset in window_presets():
            window = window_presets()[preset]
        elif preset != "custom":
            raise ValueError(
                f"unknown preset {preset!r}: auto, custom, {', '.join(window_presets())}"
            )
        with self.hold_sync():
            self.meta = scene.meta()
            self.preset = preset
            if window is not None and "window" not in kwargs:
                self.window = [float(window[0]), float(window[1])]
            if "cursor" not in kwargs:
                self.cursor = scene.start_cursor()
            if "frame" not in kwargs:
                self.frame = scene.frame
            if "overlay_mode" not in kwargs:
                modes = {n for n in self.meta["volumes"]}
                self.overlay_mode = ("compare" if {"labels", "prediction"} <= modes else
                                     "prediction" if "prediction" in modes else
                                     "labels" if "labels" in modes else "none")  # fmt: skip

    @t.observe("frame")
    def _frame_changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "scene") and self.scene.series is not None:
            t_new = min(int(change["new"]), self.scene.series.n_volumes - 1)
            with self._lock:
                moved = self.scene.set_frame(t_new)
            if moved:  # only the image travels again
                threading.Thread(target=self._stream_frame, daemon=True,
                                 name="medai-viewer-frame").start()  # fmt: skip

    def _stream_frame(self) -> None:
        with self._lock:
            self.bytes_sent += transport.stream(self.scene.image_levels(),
                                                lambda c, b: self.send(c, b))  # fmt: skip

    @t.observe("preset")
    def _preset_changed(self, change: dict[str, Any]) -> None:
        presets = window_presets()
        if change["new"] in presets:
            self.window = list(presets[change["new"]])
        elif change["new"] == "auto" and hasattr(self, "scene"):
            self.window = list(choose_window(self.scene)[1])

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "ready":
            self._stream_async()
        elif content.get("type") == "edit":
            with self._lock:  # not while a stream reads the array
                ok = self.annotations.receive(content, _buffers)
            if ok:
                self.edit_seq = self.annotations.last_seq
        elif content.get("type") == "measurements":
            self.measurements = measurements(content.get("items"), self.scene.image.affine)
        elif content.get("type") == "propose":
            threading.Thread(target=self._propose, args=(content,), daemon=True,
                             name="medai-viewer-assist").start()  # fmt: skip

    def _propose(self, content: dict[str, Any]) -> None:
        """Run the assist model for a click and send the proposal (or the error) back."""
        from medai_lab.errors import MedaiError
        from medai_lab.widgets.assist import proposal_flat, propose
        from medai_lab.widgets.edits import encode_runs

        reply: dict[str, Any] = {"type": "proposal", "id": content.get("id", 0)}
        buffers: list[bytes] = []
        try:
            if self.assist is None:
                raise MedaiError("no model: set viewer.assist = model(image_roi, clicks) -> mask")
            image = self.scene.image.array
            origin, mask = propose(image, content.get("clicks") or [], self.assist,
                                   self.assist_roi, self.scene.image.spacing)  # fmt: skip
            runs = encode_runs(proposal_flat(origin, mask, image.shape[:3]), image.shape[:3], 0)
            reply.update(axis=0, runs=len(runs), origin=list(origin))
            buffers = [runs.astype("<u4").tobytes()]
            self.proposals += 1
        except MedaiError as exc:
            reply["error"] = str(exc)
        self.send(reply, buffers)

    # ---------------------------------------------------------------- annotation (Python API)

    @property
    def labels(self) -> Any:
        """The edited label array (NumPy, x-y-z on the RAS+ grid of ``scene.image``)."""
        return self.annotations.labels

    def label_volume(self) -> Any:
        """The labels as a ``Volume`` with the image geometry."""
        return self.annotations.volume()

    def paint(self, mask: Any, label: int = 1) -> int:
        """Give the voxels of ``mask`` (boolean, on the RAS+ grid of ``scene.image``) the value
        ``label`` (0 erases), here and in open views, where it is one undo step. Returns the
        number of voxels in ``mask``."""
        with self._lock:
            content, data = self.annotations.paint(mask, label)
        self.send(content, [data])
        return int(np.count_nonzero(mask))

    def save(self, path: str | Path, *, reference: Any = None) -> Path:
        """Save the labels: ``.nii``/``.nii.gz`` (NIfTI, image geometry) or ``.dcm`` (DICOM SEG
        referencing ``reference``, by default the DICOM series the image was opened from)."""
        return self.annotations.save(path, reference)

    def stats(self) -> list[dict[str, Any]]:
        """Per label: voxels, ``volume_ml``, ``mean``/``sd``/``min``/``max`` of the image (HU)."""
        return self.annotations.stats()

    def _stream_async(self) -> None:
        # A thread keeps the kernel free while big volumes compress (ipykernel's iopub is
        # thread-safe); the lock keeps two streams from interleaving.
        threading.Thread(target=self.stream, name="medai-viewer-stream", daemon=True).start()

    def stream(self, send: transport.Send | None = None) -> int:
        """Send every volume of the current scene; returns compressed bytes sent."""
        send = send or (lambda content, buffers: self.send(content, buffers))
        with self._lock:
            sent = transport.stream(self.scene.levels(), send)
            self.bytes_sent += sent
            return sent

    def png(self, height: int = 320) -> bytes:
        """The three planes through the cursor with overlays (as the static fallback shows)."""
        from medai_lab.widgets.render import three_planes_png

        s = self.scene
        mode = self.overlay_mode
        labels = {"labels": s.labels, "prediction": s.prediction, "compare": s.prediction}.get(mode)
        truth = s.labels if mode == "compare" else None
        return three_planes_png(
            s.image.array, s.image.spacing, tuple(self.cursor), tuple(self.window),  # type: ignore[arg-type]
            labels=labels, truth=truth,
            lut=colour_lut_table(self.meta.get("dictionary", []) + self.meta["labels"],
                                 set(self.hidden_labels)),
            opacity=self.opacity, convention=self.convention, height=height,
        )  # fmt: skip

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            try:
                data["image/png"] = base64.b64encode(self.png()).decode("ascii")
            except Exception as exc:  # the live widget still works; say why the picture is missing
                data["text/plain"] = f"{data.get('text/plain', '')} (no static image: {exc})"
        return bundle

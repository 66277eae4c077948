"""``view()``: one call from anything image-like to the notebook viewer."""

from __future__ import annotations

from typing import Any

from medai_lab.errors import MedaiError
from medai_lab.widgets.adapters import same_grid, to_volume
from medai_lab.widgets.label_sources import label_object_overlay
from medai_lab.widgets.labels import names_beside, read_label_names
from medai_lab.widgets.scene import Scene


def scene_of(
    image: Any,
    labels: Any = None,
    prediction: Any = None,
    *,
    label_names: Any = None,
    spacing: Any = None,
    affine: Any = None,
    title: str = "",
) -> Scene:
    """Load and reorient image, labels and prediction (RAS+) into a :class:`Scene`."""
    series = to_volume(image, spacing=spacing, affine=affine)
    # A 4-D series shows one volume at a time (the frame slider); overlays lie on its 3-D grid.
    vol = series.volume(0)
    ras = vol.to_ras()
    overlays = {}
    found: dict[int, str] = {}
    for name, obj in (("labels", labels), ("prediction", prediction)):
        if obj is not None:
            obj, object_names = label_object_overlay(obj, vol)  # DICOM SEG / RTSTRUCT
            found = found or object_names
            other = to_volume(
                obj, spacing=spacing, affine=affine if affine is not None else vol.affine, name=name
            )
            overlays[name] = same_grid(vol, other, name).array
    names = read_label_names(label_names) if label_names is not None else (
        found or names_beside(labels) or names_beside(prediction))  # fmt: skip
    return Scene(ras, overlays.get("labels"), overlays.get("prediction"), names, title,
                 source=_dicom_source(image),
                 series=series.to_ras() if series.array.ndim == 4 else None)  # fmt: skip


def _dicom_source(image: Any) -> Any:
    """The DICOM folder/file ``image`` names (a DICOM SEG of the labels references it)."""
    from pathlib import Path

    if isinstance(image, (str, Path)):
        p = Path(image)
        if p.is_dir() or (p.is_file() and not p.name.lower().endswith((".nii", ".nii.gz"))):
            return p
    return None


def view(
    image: Any,
    labels: Any = None,
    prediction: Any = None,
    preset: str = "auto",
    *,
    label_names: Any = None,
    spacing: Any = None,
    affine: Any = None,
    layout: str = "three",
    convention: str = "radiological",
    backend: str = "medai",
    assist: Any = None,
    **traits: Any,
) -> Any:
    """Show a 3-D image with optional label and prediction overlays.

    Parameters
    ----------
    image, labels, prediction
        A ``Volume``, NumPy array (with ``spacing`` or ``affine``), nibabel image, MONAI
        MetaTensor, SimpleITK image, or a path to a NIfTI file / DICOM folder. Overlays must lie
        on the image's grid (any orientation).
    preset
        "auto" (for CT the lung or abdominal window, from the body part or the image's
        histogram; percentiles otherwise: :mod:`medai_lab.widgets.autowindow`) or a CT preset
        of ``data/presets.json``: "abdomen", "soft_tissue", "liver", "lung", "mediastinum",
        "bone", "brain", "stroke", "subdural".
    label_names
        ``{value: name}`` or a labels.json / dataset.json path (default: one beside ``labels``);
        also the label picker's choices when painting.
    backend
        "medai" (this viewer) or "itkwidgets".
    assist
        A model ``model(image_roi, clicks) -> mask`` for the "assist" tool
        (:mod:`medai_lab.widgets.assist`), or a trained model: run folder, checkpoint, MLflow
        run id or ``.ts``/``.onnx`` export (:mod:`medai_lab.widgets.assist_model`); also
        settable later as ``viewer.assist``.
    """
    if backend == "itkwidgets":
        from medai_lab.widgets.itk_backend import view_itk

        return view_itk(image, labels, spacing=spacing, affine=affine)
    if backend != "medai":
        raise MedaiError(f"unknown backend {backend!r}: medai or itkwidgets")
    viewer_cls = _viewer_class()
    scene = scene_of(image, labels, prediction, label_names=label_names, spacing=spacing,
                     affine=affine, title=_title(image))  # fmt: skip
    viewer = viewer_cls(scene, preset=preset, pane_layout=layout, convention=convention, **traits)
    viewer.assist = assist
    return viewer


def _viewer_class() -> type:
    try:
        from medai_lab.widgets.viewer import BUNDLE, Viewer
    except ImportError as exc:
        raise MedaiError(f"the viewer needs the lab extra ({exc.name} is missing): "
                         "pip install 'medai-lab[lab]'") from None  # fmt: skip
    if not BUNDLE.is_file():
        raise MedaiError(f"the viewer's JavaScript bundle is missing ({BUNDLE}): run "
                         "`make install` (it builds it with npm) or install the wheel")  # fmt: skip
    return Viewer


def _title(image: Any) -> str:
    from pathlib import Path

    if isinstance(image, (str, Path)):
        return Path(image).name
    return type(image).__name__

"""Files written beside a converted NIfTI: BIDS-style JSON sidecar, ``.bval`` and ``.bvec``.

Units follow BIDS (seconds for times, degrees, tesla). Nothing identifying is written: no
names, IDs, dates, UIDs or free-text descriptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medai_lab import atomic
from medai_lab.io.volume import Volume


def stem(nifti: Path) -> Path:
    """``x.nii.gz`` / ``x.nii`` -> ``x`` (same folder)."""
    name = nifti.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return nifti.with_name(name[: -len(suffix)])
    return nifti


def _ms_to_s(value: Any) -> Any:
    return None if value is None else round(float(value) / 1000.0, 6)


def sidecar_dict(volume: Volume) -> dict[str, Any]:
    """The BIDS-style description of ``volume`` (acquisition, 4th axis, scaling, units)."""
    from medai_lab import __version__

    meta = volume.meta
    acq = dict(meta.get("acquisition") or {})
    own = meta.get("volume_attributes") or {}
    acq.update({k: v for k, v in own.items() if k in acq or k == "echo_time"})
    out: dict[str, Any] = {
        "Modality": meta.get("modality") or None,
        "Manufacturer": meta.get("manufacturer") or None,
        "MagneticFieldStrength": acq.get("field_strength"),
        "RepetitionTime": _ms_to_s(acq.get("repetition_time")),
        "EchoTime": _ms_to_s(acq.get("echo_time")),
        "FlipAngle": acq.get("flip_angle"),
    }
    for key, bids in (("echo_number", "EchoNumber"), ("trigger_time", "TriggerDelayTime")):
        if key in own:
            out[bids] = _ms_to_s(own[key]) if key == "trigger_time" else int(own[key])
    axis = volume.axis4
    if axis:
        out["Axis4"] = axis
        if axis["attribute"] == "echo_time":
            out["EchoTime"] = [_ms_to_s(v) for v in axis["values"]]
    scaling = meta.get("scaling") or {}
    if scaling.get("vendor") == "Philips":
        out["UsePhilipsFloatNotDisplayScaling"] = int(scaling["philips_scaling"] == "float")
        out["PhilipsScaleSlope"] = scaling.get("philips_scale_slope")
        out["PhilipsRescaleSlope"] = scaling.get("rescale_slope")
        out["PhilipsRescaleIntercept"] = scaling.get("rescale_intercept")
    if meta.get("units"):
        out["Units"] = meta["units"]
    if meta.get("suv"):
        out["SUV"] = meta["suv"]
    out["ConversionSoftware"] = "medai-lab"
    out["ConversionSoftwareVersion"] = __version__
    return {k: v for k, v in out.items() if v is not None}


def bvec_voxel(volume: Volume) -> np.ndarray | None:
    """Diffusion directions as ``(3, n)`` in the NIfTI voxel frame (FSL convention).

    Like dcm2niix: the DICOM (LPS) gradient is expressed along the image's own voxel axes,
    and the first component is negated when the affine's determinant is positive (FSL's
    "radiological" voxel convention). ``None`` unless the 4th axis is diffusion.
    """
    axis = volume.axis4
    if not axis or axis["name"] != "diffusion":
        return None
    lps = np.array(axis["gradients_lps"], dtype=np.float64).reshape(-1, 3)
    ras = lps * np.array([-1.0, -1.0, 1.0])
    rot = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    vox = np.linalg.solve(rot, ras.T)
    if np.linalg.det(volume.affine[:3, :3]) > 0:
        vox[0] = -vox[0]
    vox[np.abs(vox) < 1e-9] = 0.0
    return vox


def _number(v: float) -> str:
    return str(round(v)) if abs(v - round(v)) < 1e-6 else f"{v:.6g}"


def write_companions(volume: Volume, nifti: Path, *, sidecar: bool = True) -> list[Path]:
    """Write the JSON sidecar (when asked) and, for diffusion, ``.bval``/``.bvec``."""
    base = stem(nifti)
    written = []
    if sidecar:
        text = json.dumps(sidecar_dict(volume), indent=2) + "\n"
        written.append(atomic.write_text(base.with_name(base.name + ".json"), text))
    vox = bvec_voxel(volume)
    if vox is not None:
        bvals = volume.axis4["values"]  # type: ignore[index]
        bval = " ".join(_number(float(b or 0.0)) for b in bvals) + "\n"
        bvec = "\n".join(" ".join(f"{c:.6g}" for c in row) for row in vox) + "\n"
        written.append(atomic.write_text(base.with_name(base.name + ".bval"), bval))
        written.append(atomic.write_text(base.with_name(base.name + ".bvec"), bvec))
    return [Path(p) for p in written]

"""PET activity (Bq/ml) to standardized uptake values, decay corrected to the scan start.

SUV = activity concentration x body size / injected dose decayed to the time the image's
activity refers to. Body size: body weight (``bw``, g), lean body mass (``lbm``, g, James
1976 formula) or body surface area (``bsa``, cm2, Du Bois 1916). Only images in Bq/ml
(Units BQML) decay corrected to the start of the scan (START) or to the injection (ADMIN)
are converted; anything else is refused with the attributes that are missing or unusable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medai_lab.errors import DicomError
from medai_lab.io.dims import _seconds
from medai_lab.io.volume import Volume

METHODS = {"bw": "g/ml", "lbm": "g/ml", "bsa": "cm2/ml"}


def body_size(method: str, weight_kg: float, height_m: float | None, sex: str) -> float:
    """Grams (``bw``, ``lbm``) or square centimetres (``bsa``) for the SUV numerator."""
    if method == "bw":
        return weight_kg * 1000.0
    if height_m is None or height_m <= 0:
        raise DicomError(f"SUV {method} needs PatientSize (height in m); it is missing")
    cm = height_m * 100.0
    if method == "bsa":
        return 0.007184 * weight_kg**0.425 * cm**0.725 * 1e4  # m2 -> cm2
    if sex not in ("M", "F"):
        raise DicomError("SUV lbm needs PatientSex M or F (the James formula differs by sex)")
    if sex == "M":
        return (1.10 * weight_kg - 128.0 * (weight_kg / cm) ** 2) * 1000.0
    return (1.07 * weight_kg - 148.0 * (weight_kg / cm) ** 2) * 1000.0


def suv_factor(ds: Any, method: str) -> tuple[float, dict[str, Any]]:
    """Multiplier from Bq/ml to SUV for the PET dataset ``ds``, and what it was made of."""
    if method not in METHODS:
        raise DicomError(f"SUV method must be one of {', '.join(METHODS)}: {method}")
    if str(getattr(ds, "Modality", "")) != "PT":
        raise DicomError("SUV applies to PET (Modality PT) only")
    units = str(getattr(ds, "Units", "") or "").upper()
    decay = str(getattr(ds, "DecayCorrection", "") or "").upper()
    seq = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    info = seq[0] if seq else None
    dose = getattr(info, "RadionuclideTotalDose", None) if info is not None else None
    half = getattr(info, "RadionuclideHalfLife", None) if info is not None else None
    start = None
    if info is not None:
        start = _seconds(getattr(info, "RadiopharmaceuticalStartDateTime", None)) or _seconds(
            getattr(info, "RadiopharmaceuticalStartTime", None)
        )
    weight = getattr(ds, "PatientWeight", None)
    scan = _seconds(getattr(ds, "SeriesTime", None)) or _seconds(
        getattr(ds, "AcquisitionTime", None)
    )
    needs = {
        "Units": units,
        "DecayCorrection": decay,
        "RadionuclideTotalDose": dose,
        "RadionuclideHalfLife": half,
        "RadiopharmaceuticalStartTime": start,
        "PatientWeight": weight,
        "SeriesTime": scan if decay == "START" else 0,
    }
    missing = [k for k, v in needs.items() if v in (None, "") or (k != "SeriesTime" and v == 0)]
    if missing:
        raise DicomError(f"cannot compute SUV: missing or zero {', '.join(missing)}")
    if units != "BQML":
        raise DicomError(f"cannot compute SUV: image Units are {units}, not BQML (Bq/ml)")
    if decay not in ("START", "ADMIN"):
        raise DicomError(f"cannot compute SUV: DecayCorrection {decay} (need START or ADMIN)")
    elapsed = 0.0
    if decay == "START":
        elapsed = (float(scan) - float(start)) % 86400.0  # type: ignore[arg-type]  # midnight
    decayed = float(dose) * 2.0 ** (-elapsed / float(half))
    size = body_size(
        method,
        float(weight),
        float(getattr(ds, "PatientSize", 0) or 0) or None,
        str(getattr(ds, "PatientSex", "") or "").upper(),
    )
    facts = {
        "type": method,
        "units": METHODS[method],
        "decay_correction": decay,
        "injected_dose_bq": float(dose),
        "dose_at_reference_bq": decayed,
        "seconds_injection_to_reference": elapsed,
        "half_life_s": float(half),
        "factor": size / decayed,
    }
    return size / decayed, facts


def apply_suv(volume: Volume, info: Any, *, method: str = "bw") -> Volume:
    """``volume`` (Bq/ml, loaded from ``info``) in SUV; ``meta["suv"]`` says how."""
    import pydicom

    ds = pydicom.dcmread(info.headers[0].path, stop_before_pixels=True)
    factor, facts = suv_factor(ds, method)
    array = volume.array.astype(np.float32) * np.float32(factor)
    meta = dict(volume.meta) | {"suv": facts, "units": METHODS[method]}
    return Volume(array, volume.affine, meta)

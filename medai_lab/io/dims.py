"""What tells a frame apart from others at the same slice position (its 4-D coordinates).

Standard attributes first (classic single-frame images and enhanced multi-frame functional
groups); vendor private fields only when asked (:func:`vendor_dims`), because reading them
needs a full parse and only series with shared positions and no standard attribute need them.
"""

from __future__ import annotations

from typing import Any

from medai_lab.io.frameinfo import floats, opt_float


def _seconds(tm: object) -> float | None:
    """DICOM TM (HHMMSS.frac) or DT (YYYYMMDDHHMMSS.frac) to seconds since midnight."""
    text = str(tm or "").strip()
    if len(text) >= 14 and text[:8].isdigit():  # DT: drop the date, keep the time
        text = text[8:].split("+")[0].split("-")[0]
    text = text.replace(":", "")
    if len(text) < 2 or not text[:2].isdigit():
        return None
    try:
        hh, mm = int(text[:2]), int(text[2:4] or 0)
        ss = float(text[4:] or 0)
    except ValueError:
        return None
    return hh * 3600 + mm * 60 + ss


def _image_type(value: object) -> str | None:
    if value is None:
        return None
    items = str(value).split("\\") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    parts = [str(v).strip().upper() for v in items]
    # Values 3.. carry MAGNITUDE / PHASE / REAL / IMAGINARY (or M / P on older scanners).
    return "\\".join(parts[2:]) or None


def classic_dims(ds: Any) -> dict[str, Any]:
    """4-D attributes of a single-frame image (pydicom dataset or fast-reader dict)."""
    get = ds.get if isinstance(ds, dict) else lambda k: getattr(ds, k, None)
    out: dict[str, Any] = {}
    for key, keyword in (
        ("temporal_position", "TemporalPositionIdentifier"),
        ("trigger_time", "TriggerTime"),
        ("echo_time", "EchoTime"),
        ("echo_number", "EchoNumbers"),
        ("b_value", "DiffusionBValue"),
        ("acquisition_number", "AcquisitionNumber"),
        ("instance_number", "InstanceNumber"),
        ("repetition_time", "RepetitionTime"),
        ("flip_angle", "FlipAngle"),
        ("field_strength", "MagneticFieldStrength"),
    ):
        value = opt_float(get(keyword))
        if value is not None:
            out[key] = value
    grad = floats(get("DiffusionGradientOrientation"), 3)
    if grad is not None:
        out["gradient"] = tuple(float(g) for g in grad)
    t = _seconds(get("AcquisitionTime"))
    if t is not None:
        out["acquisition_time"] = t
    it = _image_type(get("ImageType"))
    if it:
        out["image_type"] = it
    return out


def _item(owner: Any, seq: str) -> Any:
    value = getattr(owner, seq, None) if owner is not None else None
    return value[0] if value else None


def enhanced_dims(item: Any, shared: Any) -> dict[str, Any]:
    """4-D attributes of one frame of an enhanced multi-frame image (its functional groups)."""

    def macro(seq: str) -> Any:
        found = _item(item, seq)
        return found if found is not None else _item(shared, seq)

    out: dict[str, Any] = {}
    content = _item(item, "FrameContentSequence")
    if content is not None:
        idx = getattr(content, "DimensionIndexValues", None)
        if idx is not None:
            out["dim_index"] = tuple(int(v) for v in (idx if not isinstance(idx, int) else [idx]))
        tpi = opt_float(getattr(content, "TemporalPositionIndex", None))
        if tpi is not None:
            out["temporal_position"] = tpi
        t = _seconds(getattr(content, "FrameAcquisitionDateTime", None))
        if t is not None:
            out["acquisition_time"] = t
        stack = getattr(content, "InStackPositionNumber", None)
        if stack is not None:
            out["in_stack_position"] = int(stack)
    for key, seq, keyword in (
        ("echo_time", "MREchoSequence", "EffectiveEchoTime"),
        ("trigger_time", "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"),
        ("b_value", "MRDiffusionSequence", "DiffusionBValue"),
        ("repetition_time", "MRTimingAndRelatedParametersSequence", "RepetitionTime"),
        ("flip_angle", "MRTimingAndRelatedParametersSequence", "FlipAngle"),
    ):
        m = macro(seq)
        value = opt_float(getattr(m, keyword, None)) if m is not None else None
        if value is not None:
            out[key] = value
    diff = macro("MRDiffusionSequence")
    grad = floats(
        getattr(
            _item(diff, "DiffusionGradientDirectionSequence"), "DiffusionGradientOrientation", None
        ),
        3,
    )
    if grad is not None:
        out["gradient"] = tuple(float(g) for g in grad)
    for seq in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence", "PETFrameTypeSequence"):
        m = macro(seq)
        it = _image_type(getattr(m, "FrameType", None)) if m is not None else None
        if it:
            out["image_type"] = it
    return out


# (group, private creator, element offset, VR-independent reader) per vendor field.
_PRIVATE: dict[str, list[tuple[int, str, int]]] = {
    "b_value": [
        (0x0019, "SIEMENS MR HEADER", 0x0C),
        (0x0043, "GEMS_PARM_01", 0x39),
        (0x2001, "Philips Imaging DD 001", 0x03),
        (0x0065, "Image Private Header", 0x09),  # UIH
    ],
    "gradient": [(0x0019, "SIEMENS MR HEADER", 0x0E)],
    "phase_number": [(0x2001, "Philips Imaging DD 001", 0x08)],
}


def _private_value(ds: Any, group: int, creator: str, offset: int) -> Any:
    try:
        block = ds.private_block(group, creator)
        return block[offset].value
    except (KeyError, ValueError):
        return None


def vendor_dims(ds: Any) -> dict[str, Any]:
    """4-D attributes from vendor private fields (used when the standard ones are absent)."""
    out: dict[str, Any] = {}
    for key, places in _PRIVATE.items():
        for group, creator, offset in places:
            raw = _private_value(ds, group, creator, offset)
            if raw is None:
                continue
            if key == "gradient":
                value = floats(raw, 3)
                if value is not None:
                    out[key] = tuple(float(g) for g in value)
            else:
                value = opt_float(raw)
                if value is not None:
                    # GE stores b-values offset by 1e9 on some software versions.
                    out[key] = value % 1e9 if key == "b_value" else value
            break
    philips = [
        _private_value(ds, 0x2005, "Philips MR Imaging DD 001", o) for o in (0xB0, 0xB1, 0xB2)
    ]
    if "gradient" not in out and all(v is not None for v in philips):
        out["gradient"] = tuple(float(opt_float(v) or 0.0) for v in philips)
    return out

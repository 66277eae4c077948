"""Checks shared by the challenge's YAML readers: each failure is one :class:`SpecError` line."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medai_lab.challenge.errors import SpecError


def as_mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{what} must be a mapping (key: value), got {type(raw).__name__}")
    return raw


def require(data: Mapping[str, Any], key: str, prefix: str) -> Any:
    if data.get(key) is None:
        raise SpecError(f"{prefix}{key} is required")
    return data[key]


def known_keys(data: Mapping[str, Any], allowed: Any, prefix: str) -> None:
    for key in data:
        if key not in allowed:
            raise SpecError(f"unknown key {prefix}{key}; {hint(str(key), allowed)}")


def hint(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(choices)}"


def number(value: Any, what: str, low: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{what} must be a number, got {value!r}")
    if value < low or (strict and value <= low):
        raise SpecError(f"{what} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def folder_path(raw: Any, base: Path, what: str) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(f"{what} must be a folder path")
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else base / path).resolve()

"""Config → MLflow params and metric names: flattening, key sanitising, value truncation."""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

# MLflow's limits (mlflow.utils.validation); fixed here so this module needs no mlflow import.
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_KEY_LENGTH = 250
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

_BAD_KEY_CHARS = re.compile(r"[^\w.\- /]")


def sanitize_key(key: str) -> str:
    """A key MLflow accepts: letters, digits, ``_ - . / space``; no path tricks; ≤ 250 chars."""
    out = _BAD_KEY_CHARS.sub("_", str(key)).strip() or "_"
    norm = posixpath.normpath(out)
    if norm != out or norm == "." or norm.startswith(("..", "/")):
        out = out.replace("/", "_")
        if out.startswith("."):
            out = "_" + out
    return out[:MAX_KEY_LENGTH]


def truncate(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, ending in ``...`` when it was cut."""
    return value if len(value) <= limit else value[: limit - 3] + "..."


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy of ``obj``: mappings, sequences, scalars; Paths and others as strings."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, PurePath):
        return obj.as_posix()
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(obj)


def param_value(value: Any) -> str:
    """String form of a config value for an MLflow param (lists as JSON), truncated."""
    value = jsonable(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return truncate(text, MAX_PARAM_VAL_LENGTH)


def flatten_config(config: Mapping[str, Any] | None, sep: str = ".") -> dict[str, str]:
    """Nested config → ``{"a.b.c": "value"}`` ready for MLflow params.

    Nested mappings are joined with ``sep``; any other value (lists included) is one param.
    Keys are sanitised (:func:`sanitize_key`), values truncated to MLflow's param limit.
    """
    out: dict[str, str] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{sep}{key}" if prefix else str(key)
            if isinstance(value, Mapping) and value:
                walk(value, name)
            elif isinstance(value, Mapping):
                out[sanitize_key(name)] = "{}"
            else:
                out[sanitize_key(name)] = param_value(value)

    walk(config or {}, "")
    return out


def scalar(value: Any) -> float | None:
    """A float for a Python/numpy/torch scalar (one-element tensors included), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            if numel() != 1:
                return None
        except (TypeError, RuntimeError):
            return None
    elif getattr(value, "size", 1) != 1:
        return None
    item = getattr(value, "item", None)
    if not callable(item):
        return None
    try:
        got = item()
    except (TypeError, ValueError, RuntimeError):
        return None
    return float(got) if isinstance(got, (bool, int, float)) else None

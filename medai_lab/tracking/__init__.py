"""Experiment tracking with MLflow: store resolution, a Lightning callback, run cards.

Importing this package is light (no mlflow, torch or Lightning); ``TrackingCallback`` loads
Lightning when first accessed.

>>> from medai_lab.tracking import TrackingCallback, default_tracking_uri, ui_command
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medai_lab.tracking.params import flatten_config
from medai_lab.tracking.runcard import build_run_card, data_manifest, write_run_card
from medai_lab.tracking.store import (
    artifact_root_for,
    default_tracking_dir,
    default_tracking_uri,
    get_or_create_experiment,
    make_client,
    resolve_tracking_uri,
    ui_command,
)

if TYPE_CHECKING:
    from medai_lab.tracking.callback import TrackingCallback, TrainingTerminated

__all__ = [
    "TrackingCallback",
    "TrainingTerminated",
    "artifact_root_for",
    "build_run_card",
    "data_manifest",
    "default_tracking_dir",
    "default_tracking_uri",
    "flatten_config",
    "get_or_create_experiment",
    "make_client",
    "resolve_tracking_uri",
    "tracking_callback",
    "ui_command",
    "write_run_card",
]

_LAZY = {"TrackingCallback", "TrainingTerminated"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from medai_lab.tracking import callback

        return getattr(callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tracking_callback(experiment: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Build a :class:`TrackingCallback` (same arguments); imports Lightning on call."""
    from medai_lab.tracking.callback import TrackingCallback

    return TrackingCallback(experiment, config, **kwargs)

"""Placeholder: this command is being built in this session (registers nothing yet)."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    """Register nothing until the command exists."""

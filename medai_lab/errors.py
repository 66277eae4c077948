"""Errors that end in one clear line for the user (the CLI prints ``str(err)`` and exits 2)."""

from __future__ import annotations


class MedaiError(Exception):
    """Base class: a problem with the user's input or set-up, not a bug in MedAI Lab."""


class DicomError(MedaiError):
    """A DICOM file or series cannot be turned into a correct volume."""


class SeriesGeometryError(DicomError):
    """Slices do not form a regular grid (gaps, duplicates, mixed sizes or orientations)."""

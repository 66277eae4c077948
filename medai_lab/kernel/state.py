"""Kernel-wide switches of the extension (no imports: read by formatters and magics)."""

SHOW_PHI = False  # %medai phi on: identifying DICOM attributes shown unmasked

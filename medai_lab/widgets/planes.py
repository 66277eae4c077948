"""The viewer's display convention: defined once in :mod:`medai_lab.display` for every picture."""

from medai_lab.display import (
    PLANES,
    edge_letters,
    pixel_size,
    screen_slice,
    sliced_axis,
    voxel_to_screen,
)

__all__ = ["PLANES", "edge_letters", "pixel_size", "screen_slice", "sliced_axis", "voxel_to_screen"]

"""Offline, seeded example datasets: CT-like phantoms for the catalogue's tasks (lung, liver,
heart and any task added as YAML with a phantom recipe, see :mod:`medai_lab.catalogue`).

Written in the Medical Segmentation Decathlon layout, so demos and tests need no downloads.
"""

from medai_lab.datasets.phantom import make_phantom, write_phantom_dataset
from medai_lab.datasets.phantom_recipe import phantom_tasks

__all__ = ["make_phantom", "phantom_tasks", "write_phantom_dataset"]

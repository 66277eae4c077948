"""Offline, seeded example datasets: CT-like phantoms for lung, liver and heart segmentation.

Written in the Medical Segmentation Decathlon layout, so demos and tests need no downloads.
"""

from medai_lab.datasets.phantom import LABELS, TASKS, make_phantom, write_phantom_dataset

__all__ = ["LABELS", "TASKS", "make_phantom", "write_phantom_dataset"]

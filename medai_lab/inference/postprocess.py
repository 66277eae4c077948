"""Post-processing of predicted label maps, shared by validation, inference and export.

Largest connected component over the union of the contract's ``keep_largest`` labels (one
component, so a tumour touching its organ stays), as MONAI's
``KeepLargestConnectedComponent(independent=False)`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["keep_largest", "keep_largest_component"]


def keep_largest_component(pred: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """scipy equivalent of MONAI's KeepLargestConnectedComponent(independent=False).

    Voxels of ``labels`` outside the largest fully-connected component of their union become
    background; other labels are untouched. ``pred`` is channel-first ``(1, X, Y, Z)``.
    """
    from scipy import ndimage as ndi

    mask = np.isin(pred[0], list(labels))
    full = ndi.generate_binary_structure(mask.ndim, mask.ndim)  # MONAI's connectivity=None
    components, n = ndi.label(mask, structure=full)
    if n <= 1:
        return pred
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    out = pred.copy()
    out[0][mask & (components != int(sizes.argmax()))] = 0
    return out


def keep_largest(pred: Any, labels: Sequence[int]) -> Any:
    """The same on a ``(1, X, Y, Z)`` tensor: MONAI's transform (device-side) when it can run.

    MONAI's CPU path needs scikit-image; without it the scipy version gives the same result.
    """
    import torch

    keep = [int(v) for v in labels]
    if not keep:
        return pred
    from monai.utils import optional_import

    if not optional_import("skimage.measure")[1]:
        return torch.as_tensor(keep_largest_component(pred.cpu().numpy(), keep))
    from monai.transforms import KeepLargestConnectedComponent

    klcc = KeepLargestConnectedComponent(applied_labels=keep, is_onehot=False, independent=False)
    return torch.as_tensor(klcc(pred))

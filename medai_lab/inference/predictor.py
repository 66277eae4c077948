"""``Predictor``: a trained or exported network applied to whole images, labels on their grid.

The same steps as validation, from the model's :class:`~medai_lab.contract.ModelContract`
(built by :func:`medai_lab.tasks.checkpoint.model_contract` at training time): load, RAS,
resample to the model spacing, body crop, intensity transform, sliding-window inference,
argmax, largest component; then the label map goes back through MONAI's inverse transforms
onto the input image's own grid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from medai_lab.contract import ModelContract
from medai_lab.errors import MedaiError
from medai_lab.inference.postprocess import keep_largest_component

__all__ = ["InferenceError", "Predictor"]


class InferenceError(MedaiError):
    """A model or image could not be used for inference."""


class Predictor:
    """Segment images with a network and its contract.

    Parameters
    ----------
    network
        ``(N, C, D, H, W) float32 tensor -> logits``: an ``nn.Module``, a TorchScript module or
        the ONNX runner from :func:`medai_lab.export.load_exported`.
    contract
        The model's :class:`~medai_lab.contract.ModelContract`, or its JSON form (a sidecar:
        its other keys stay readable in :attr:`meta`).
    device
        ``"cpu"``, ``"cuda"``...; default CUDA when available (ONNX runs on CPU).
    sw_batch_size
        Windows per forward pass; default from the contract.
    """

    def __init__(
        self,
        network: Callable[[Any], Any],
        contract: ModelContract | Mapping[str, Any],
        device: str | None = None,
        sw_batch_size: int | None = None,
    ) -> None:
        import torch

        try:
            self.contract = ModelContract.from_dict(contract)
        except MedaiError as exc:
            raise InferenceError(str(exc)) from None
        # the sidecar as read (format, versions, run id ...), or the contract's JSON form
        self.meta = dict(contract) if isinstance(contract, Mapping) else contract.to_dict()
        inf = self.contract.inference
        self.sw_batch_size = int(sw_batch_size or inf.sw_batch_size)
        self.overlap = inf.overlap
        self.mode = inf.mode
        self.keep_largest = list(inf.keep_largest)
        self.patch_size = list(self.contract.patch_size)
        on_torch = isinstance(network, torch.nn.Module)
        if device is None:
            device = "cuda" if on_torch and torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if isinstance(network, torch.nn.Module):
            network = network.eval().to(self.device)
        self.network = network
        self._pre: Any = None

    # --- constructors ------------------------------------------------------------------------

    @classmethod
    def load(
        cls, source: str | os.PathLike[str], *, tracking_uri: str | None = None, **kwargs: Any
    ) -> Predictor:
        """From what ``medai-lab export`` takes, or an export with its JSON sidecar.

        ``source`` is an exported ``.ts`` / ``.onnx`` file (its contract from
        :func:`medai_lab.export.find_sidecar`), a checkpoint (``.ckpt``), a run folder (its best
        checkpoint) or an MLflow run id (looked up in ``tracking_uri``), resolved by
        :func:`medai_lab.export.resolve_checkpoint` exactly as ``medai-lab export`` does.
        """
        from medai_lab.export import ExportError, load_exported, resolve_checkpoint

        path = Path(source)
        try:
            if path.is_file() and path.suffix != ".ckpt":
                network, contract = load_exported(path)
                return cls(network, contract, **kwargs)
            checkpoint = resolve_checkpoint(source, tracking_uri)
        except ExportError as exc:
            raise InferenceError(str(exc)) from exc
        return cls.from_checkpoint(checkpoint, **kwargs)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """From a checkpoint written by ``medai-lab train`` (weights and config)."""
        from medai_lab.export.source import load_network

        network, contract = load_network(path)
        return cls(network, contract, **kwargs)

    # --- inference ---------------------------------------------------------------------------

    def logits(self, image: Any) -> Any:
        """Sliding-window logits of a preprocessed ``(N, C, D, H, W)`` tensor."""
        import torch
        from monai.inferers import sliding_window_inference

        x = image.as_tensor() if hasattr(image, "as_tensor") else image
        amp = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=amp):
            out = sliding_window_inference(
                x.to(self.device),
                roi_size=self.patch_size,
                sw_batch_size=self.sw_batch_size,
                predictor=self.network,
                overlap=self.overlap,
                mode=self.mode,
            )
        return cast(torch.Tensor, out).float()  # one tensor in, one tensor out

    def labels_of(self, image: Any) -> np.ndarray:
        """Label map ``(X, Y, Z) uint8`` of a preprocessed ``(1, C, X, Y, Z)`` tensor."""
        import torch

        pred = torch.argmax(self.logits(image), dim=1, keepdim=True)[0].cpu().numpy()
        if self.keep_largest:
            pred = keep_largest_component(pred, self.keep_largest)
        return pred[0].astype(np.uint8)

    def predict(self, image_path: str | os.PathLike[str]) -> Any:
        """Segment one image file; a :class:`medai_lab.io.Volume` on the image's own grid."""
        from monai.data import MetaTensor
        from monai.transforms import Invertd

        from medai_lab.io import Volume

        image_path = Path(image_path)
        if not image_path.is_file():
            raise InferenceError(f"no such image: {image_path}")
        pre = self._transforms()
        try:
            data = pre({"image": str(image_path)})
        except Exception as exc:  # MONAI wraps reader errors in RuntimeError chains
            raise InferenceError(f"cannot read {image_path.name}: {_root_cause(exc)}") from exc
        image = data["image"]
        labels = self.labels_of(image[None])
        data["pred"] = MetaTensor(
            labels[None].astype(np.float32),
            affine=image.affine,
            meta={k: v for k, v in image.meta.items() if k != "affine"},
            applied_operations=list(image.applied_operations),
        )
        inverse = Invertd(keys="pred", transform=pre, orig_keys="image", nearest_interp=True)
        out = inverse(data)["pred"]
        array = np.rint(np.asarray(out.detach().cpu())[0]).astype(np.uint8)
        affine = np.asarray(out.affine.detach().cpu(), dtype=np.float64)
        return Volume(array, affine, {"source": image_path.name, "kind": "labels"})

    def _transforms(self) -> Any:
        if self._pre is None:
            from medai_lab.datasets.transforms import preprocess_transforms
            from medai_lab.progress import quiet_third_party

            raw = self.contract.to_dict()
            task = {k: raw[k] for k in ("spacing", "intensity", "foreground_threshold")}
            # 4-D images: the frames the model was trained on become its channels.
            frames = self.contract.frames
            choice = frames if isinstance(frames, str) else list(frames)
            with quiet_third_party():  # MONAI's LoadImage probes every reader it knows
                self._pre = preprocess_transforms({"task": task}, keys=("image",), frames=choice)
        return self._pre


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

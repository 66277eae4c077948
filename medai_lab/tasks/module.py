"""The shared LightningModule: a MONAI network, Dice+CE loss, sliding-window validation.

Validation runs on whole preprocessed volumes (batch size 1), turns logits into a label map,
optionally keeps the largest connected component, and scores every case with
:func:`medai_lab.evaluation.evaluate_case` (Dice, HD95, NSD in mm on the case's own grid).
After each validation epoch:

- ``case_metrics``: pandas DataFrame, one row per (case, label);
- ``val_examples``: ``{"best": ..., "worst": ...}`` arrays of the cases with the highest and
  lowest mean Dice, for :func:`medai_lab.tasks.overlay.overlay_figure`;
- ``val/dice_mean`` (mean over cases of the per-case mean Dice) and per-label metrics logged.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from medai_lab.evaluation import evaluate_case
from medai_lab.inference.postprocess import keep_largest
from medai_lab.tasks.checkpoint import export_contract, model_contract
from medai_lab.tasks.config import ConfigError
from medai_lab.tasks.overlay import overlay_figure
from medai_lab.tasks.schema import TrainConfig

__all__ = [
    "SegmentationModule",
    "build_network",
    "export_contract",
    "model_contract",
    "overlay_figure",
    "patch_divisor",
]

CASE_COLUMNS = [
    "case",
    "label",
    "label_name",
    "dice",
    "hd95",
    "nsd",
    "truth_voxels",
    "pred_voxels",
    "epoch",
]


def patch_divisor(model: Mapping[str, Any]) -> int:
    """Patch sizes must be multiples of this for the network's down/up-sampling to line up."""
    name = model["name"]
    if name == "unet":
        return int(np.prod([int(s) for s in model["strides"]]))
    if name == "segresnet":
        return 2 ** (len(model["blocks_down"]) - 1)
    if name == "swinunetr":
        return 32
    raise ConfigError(f"unknown model {name!r}; choose unet, segresnet or swinunetr")


def build_network(model: Mapping[str, Any], in_channels: int, out_channels: int) -> torch.nn.Module:
    """The MONAI network named by ``model["name"]``; other keys are its keyword arguments."""
    from monai.networks.nets import SegResNet, SwinUNETR, UNet

    kwargs: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in model.items() if k != "name"
    }
    name = model["name"]
    if name == "swinunetr" and importlib.util.find_spec("einops") is None:
        # MONAI imports einops lazily: without this check the error would come mid-epoch.
        raise ConfigError("model swinunetr needs the einops package (pip install einops)")
    try:
        if name == "unet":
            return UNet(
                spatial_dims=3, in_channels=in_channels, out_channels=out_channels, **kwargs
            )
        if name == "segresnet":
            return SegResNet(
                spatial_dims=3, in_channels=in_channels, out_channels=out_channels, **kwargs
            )
        if name == "swinunetr":
            return SwinUNETR(
                in_channels=in_channels, out_channels=out_channels, spatial_dims=3, **kwargs
            )
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"cannot build model {name!r} from its config: {exc}") from exc
    raise ConfigError(f"unknown model {name!r}; choose unet, segresnet or swinunetr")


def spacing_of(image: Any) -> tuple[float, ...]:
    """Voxel size (mm) of a (batched) MetaTensor from its affine; 1 mm when it has none."""
    affine = getattr(image, "affine", None)
    if affine is None:
        return (1.0, 1.0, 1.0)
    aff = np.asarray(affine.detach().cpu() if torch.is_tensor(affine) else affine, dtype=float)
    if aff.ndim == 3:
        aff = aff[0]
    return tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))


class SegmentationModule(pl.LightningModule):
    """Segmentation of one task as configured by :func:`medai_lab.tasks.compose`.

    Parameters
    ----------
    config
        The composed config; stored in the checkpoint (``hparams.config``), so
        ``SegmentationModule.load_from_checkpoint(path)`` rebuilds the same network.
    """

    def __init__(self, config: TrainConfig | Mapping[str, Any]) -> None:
        super().__init__()
        cfg = TrainConfig.from_dict(config)
        # plain YAML types in the checkpoint: it loads with torch.load(weights_only=True)
        self.save_hyperparameters({"config": cfg.as_dict()})
        self.config = cfg
        task = cfg.task
        self.labels: dict[int, str] = {k: v for k, v in task.labels.items() if k != 0}
        if not self.labels:
            raise ConfigError("task.labels lists no foreground label")
        self.patch_size = list(task.patch_size)
        div = patch_divisor(cfg.model)
        # SwinUNETR's bottleneck is patch/32 and instance norm needs more than one voxel there.
        low = 2 * div if cfg.model.name == "swinunetr" else div
        if any(p % div or p < low for p in self.patch_size):
            raise ConfigError(
                f"task.patch_size {self.patch_size} must be multiples of {div} (at least "
                f"{low}) for {cfg.model.name}"
            )
        self.net = build_network(cfg.model, task.in_channels, max(self.labels) + 1)
        from monai.losses import DiceCELoss

        loss = cfg.loss
        self.loss_fn = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            include_background=loss.include_background,
            lambda_dice=loss.lambda_dice,
            lambda_ce=loss.lambda_ce,
            batch=loss.batch,
            weight=_class_weights(loss.class_weights, max(self.labels) + 1),
        )
        self.case_metrics = pd.DataFrame(columns=CASE_COLUMNS)
        self.val_examples: dict[str, dict[str, Any]] = {}
        self.last_val_epoch: int | None = None  # epoch of the weights last validated
        self._loaded_epoch: int | None = None  # epoch of the checkpoint last loaded
        self._trained_epoch: int | None = None  # last epoch trained in this process
        self._rows: list[dict[str, Any]] = []
        self._extremes: dict[str, dict[str, Any]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # --- training ----------------------------------------------------------------------------

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        x, y = batch["image"], batch["label"]
        loss = self.loss_fn(self.net(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        self._trained_epoch, self._loaded_epoch = int(self.current_epoch), None

    def configure_optimizers(self) -> Any:  # Lightning's optimiser + scheduler dict
        opt = self.config.optim
        name, lr, wd = opt.name, opt.lr, opt.weight_decay
        optimizer: torch.optim.Optimizer
        if name == "adamw":
            optimizer = torch.optim.AdamW(
                self.parameters(), lr=lr, weight_decay=wd, betas=(opt.momentum, 0.999)
            )
        elif name == "sgd":
            optimizer = torch.optim.SGD(
                self.parameters(),
                lr=lr,
                weight_decay=wd,
                momentum=opt.momentum,
                nesterov=opt.nesterov,
            )
        else:
            raise ConfigError(f"unknown optimiser {name!r}; choose adamw or sgd")
        sched = opt.scheduler
        if sched.name == "none":
            return {"optimizer": optimizer}
        factor = _lr_factor(
            sched.name,
            total=max(1, int(self.trainer.max_epochs or 1)),
            warmup=sched.warmup_epochs,
            floor=sched.min_lr_ratio,
            power=sched.power,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # --- validation --------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._rows, self._extremes = [], {}
        epoch = self.current_epoch
        if self.trainer.state.fn != "fit":
            # trainer.validate() does not restore the epoch counter: name the weights' epoch.
            for known in (self._trained_epoch, self._loaded_epoch):
                epoch = known if known is not None else epoch
        self.last_val_epoch = int(epoch)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        from monai.inferers import sliding_window_inference

        ev = self.config.eval
        image, label = batch["image"], batch["label"]
        spacing = spacing_of(image)
        x = image.as_tensor() if hasattr(image, "as_tensor") else image
        y = label.as_tensor() if hasattr(label, "as_tensor") else label
        logits = sliding_window_inference(
            x,
            roi_size=self.patch_size,
            sw_batch_size=ev.sw_batch_size,
            predictor=self.net,
            overlap=ev.overlap,
            mode=ev.mode,
        )
        self.log("val/loss", self.loss_fn(logits, y), on_epoch=True, batch_size=1, sync_dist=True)
        pred = torch.argmax(cast(torch.Tensor, logits), dim=1, keepdim=True)[0]  # (1, X, Y, Z)
        pred = self._postprocess(pred)
        pred_np = pred[0].to(torch.uint8).cpu().numpy()
        truth_np = y[0, 0].round().to(torch.uint8).cpu().numpy()
        case = batch["case"][0] if "case" in batch else f"case_{batch_idx:03d}"
        rows = evaluate_case(pred_np, truth_np, self.labels, spacing, ev.nsd_tolerance)
        for row in rows:
            row.update(case=str(case), epoch=self.last_val_epoch)
        self._rows.extend(rows)
        dice = float(np.mean([r["dice"] for r in rows]))
        example = None
        for key, better in (("best", np.greater), ("worst", np.less)):
            if key not in self._extremes or better(dice, self._extremes[key]["dice"]):
                if example is None:
                    img = x[0, 0].float().cpu().numpy()
                    example = dict(
                        case=str(case),
                        dice=dice,
                        spacing=spacing,
                        labels=dict(self.labels),
                        image=img,
                        label=truth_np,
                        prediction=pred_np,
                    )
                self._extremes[key] = example

    def on_validation_epoch_end(self) -> None:
        df = pd.DataFrame(self._rows, columns=CASE_COLUMNS)
        self.case_metrics = df
        self.val_examples = dict(self._extremes)
        if df.empty:
            return
        # Every rank validates every case (no sharding), so the values agree across ranks.
        sync = self.trainer.world_size > 1
        for key, value in summarize_cases(df, self.labels).items():
            name = "val/" + key.replace("/", "_")  # val/dice_mean, val/dice_<label>, ...
            self.log(name, value, on_epoch=True, prog_bar=key == "dice_mean", sync_dist=sync)

    def _postprocess(self, pred: torch.Tensor) -> torch.Tensor:
        keep = [v for v in self.config.task.keep_largest if v in self.labels]
        if not (self.config.eval.postprocess and keep):
            return pred
        return keep_largest(pred, keep)

    # --- checkpoints: random states, so a resumed run continues the same random stream ---

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["medai_rng"] = {
            "torch": torch.get_rng_state(),
            # Plain types and tensors only: checkpoints load with torch.load(weights_only=True).
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._loaded_epoch = int(checkpoint.get("epoch", 0))
        state = checkpoint.get("medai_rng")
        trainer = self._trainer
        # Only when resuming a fit: loading weights for inference must not reseed the caller.
        if state is None or trainer is None or trainer.state.fn != "fit":
            return
        torch.set_rng_state(state["torch"])
        np.random.set_state(_numpy_state_from_plain(state["numpy"]))
        random.setstate(state["python"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _class_weights(weights: Any, num_classes: int) -> torch.Tensor | None:
    if weights is None:
        return None
    if len(weights) != num_classes:
        raise ConfigError(f"loss.class_weights needs {num_classes} values, got {weights}")
    return torch.tensor([float(w) for w in weights], dtype=torch.float32)


def _numpy_state_to_plain(state: Any) -> list[Any]:
    name, keys, pos, has_gauss, gauss = state
    return [
        str(name),
        torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        int(pos),
        int(has_gauss),
        float(gauss),
    ]


def _numpy_state_from_plain(state: list[Any]) -> tuple:
    name, keys, pos, has_gauss, gauss = state
    return (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss)


def _lr_factor(name: str, total: int, warmup: int, floor: float, power: float):
    """Per-epoch LR multiplier: linear warm-up, then cosine (to ``floor``) or polynomial decay."""
    if name not in ("cosine", "poly"):
        raise ConfigError(f"unknown scheduler {name!r}; choose cosine, poly or none")

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        t = min(1.0, (epoch - warmup) / max(1, total - warmup))
        if name == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        return max(floor, (1 - t) ** power)

    return factor


def summarize_cases(case_metrics: pd.DataFrame, labels: Mapping[int, str]) -> dict[str, float]:
    """``dice_mean`` plus ``dice/<label>``, ``hd95/<label>``, ``nsd/<label>`` means."""
    out: dict[str, float] = {}
    if case_metrics.empty:
        return out
    out["dice_mean"] = float(case_metrics.groupby("case")["dice"].mean().mean())
    for value, name in labels.items():
        sub = case_metrics[case_metrics["label"] == int(value)]
        hd = sub["hd95"].to_numpy(dtype=float)
        out[f"dice/{name}"] = float(sub["dice"].mean())
        out[f"hd95/{name}"] = float(np.nanmean(hd)) if np.isfinite(hd).any() else math.nan
        out[f"nsd/{name}"] = float(sub["nsd"].mean())
    return out

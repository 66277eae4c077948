"""A tiny real LightningModule (linear model on random tensors) for the tracking tests."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from medai_lab.tracking import TrackingCallback


class TinyModule(pl.LightningModule):
    """Linear regression; can fail, sleep, and log a table through the tracking callback."""

    def __init__(
        self,
        fail_at_epoch: int | None = None,
        fail_with: type[BaseException] = RuntimeError,
        sleep: float = 0.0,
        lr: float = 0.05,
    ) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
        self.fail_at_epoch, self.fail_with = fail_at_epoch, fail_with
        self.sleep, self.lr = sleep, lr

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.fail_at_epoch is not None and self.current_epoch >= self.fail_at_epoch:
            raise self.fail_with("boom in training_step")
        if self.sleep:
            time.sleep(self.sleep)
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def on_train_epoch_end(self) -> None:
        # Logged after the callbacks' on_train_epoch_end: the callback must still catch it.
        self.log("module_epoch_metric", float(self.current_epoch + 1))

    def on_validation_epoch_end(self) -> None:
        callback = TrackingCallback.of(self.trainer)
        if callback is not None and not self.trainer.sanity_checking:
            import pandas as pd

            table = pd.DataFrame({"case": ["case_000", "case_001"], "dice": [0.5, 0.7]})
            callback.log_table(table, "per_case")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loaders(n: int = 32, batch: int = 8) -> tuple[DataLoader, DataLoader]:
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 4, generator=gen), torch.randn(n, 1, generator=gen))
    return DataLoader(data, batch_size=batch), DataLoader(data, batch_size=batch)


def make_trainer(callback: pl.Callback, max_epochs: int = 2) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[callback],
    )

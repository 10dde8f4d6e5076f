"""TensorBoard logging: the trainer's step and epoch records as TensorBoard scalars.

``TensorBoardCallback(log_dir)`` writes, through ``torch.utils.tensorboard.SummaryWriter``:

- every optimizer step (x axis: the global step): ``step/loss``, ``step/grad_norm``
  (pre-clip), ``step/lr``, ``step/clipped`` (1 or 0) and ``step/clip_factor``;
- every epoch (x axis: the epoch, 0-based): ``epoch/train_loss``, ``epoch/val_loss``,
  ``epoch/clip_fraction``, ``epoch/lr`` (after the scheduler step), ``epoch/grad_norm_p50``,
  ``epoch/grad_norm_p90`` and ``epoch/grad_norm_max``;
- each LR cut as text under ``lr_cuts``.

The values are the History's own (TensorBoard stores them as float32). Needs the
``tensorboard`` package: ``pip install nbtrain[tensorboard]``. View with
``tensorboard --logdir <log_dir>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

STEP_SCALARS = ("loss", "grad_norm", "lr", "clipped", "clip_factor")
EPOCH_SCALARS = (
    "train_loss",
    "val_loss",
    "clip_fraction",
    "lr",
    "grad_norm_p50",
    "grad_norm_p90",
    "grad_norm_max",
)


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError(
            "TensorBoardCallback needs the tensorboard package: pip install nbtrain[tensorboard] "
            f"(or pip install tensorboard); the import failed with: {exc}"
        ) from exc
    return SummaryWriter


class TensorBoardCallback(Callback):
    """Write the run's step and epoch records to TensorBoard event files in ``log_dir``.

    The writer opens when training begins and closes when it ends. On a resumed run it
    starts with ``purge_step`` at the resume point, so TensorBoard hides step records a
    crashed run wrote after its last checkpoint.
    """

    def __init__(self, log_dir: str | os.PathLike, flush_secs: int = 10) -> None:
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a folder path, got {type(log_dir).__name__}: {log_dir!r}")
        if isinstance(flush_secs, bool) or not isinstance(flush_secs, int) or flush_secs < 1:
            raise ValueError(f"flush_secs must be a positive int, got {flush_secs!r}")
        self._writer_class = _summary_writer_class()  # fail now, not after the first epoch
        self.log_dir = Path(log_dir)
        self.flush_secs = flush_secs
        self.writer = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        if self.writer is not None:
            self.writer.close()
        purge = trainer.global_step if trainer.global_step > 0 else None
        self.writer = self._writer_class(log_dir=str(self.log_dir), purge_step=purge, flush_secs=self.flush_secs)

    def _add_scalars(self, group: str, keys: tuple, row: dict, index: int) -> None:
        if self.writer is None:
            return
        for key in keys:
            if key in row and row[key] is not None:
                self.writer.add_scalar(f"{group}/{key}", float(row[key]), index)

    def on_step_end(self, trainer: "Trainer", row: dict) -> None:
        self._add_scalars("step", STEP_SCALARS, row, int(row["step"]))

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None:
        self._add_scalars("epoch", EPOCH_SCALARS, row, int(row["epoch"]))

    def on_lr_reduced(self, trainer: "Trainer", old_lr: float, new_lr: float, val_loss: float) -> None:
        if self.writer is None:
            return
        self.writer.add_text(
            "lr_cuts",
            f"Learning rate reduced: {old_lr:.4g} -> {new_lr:.4g} (validation loss: {val_loss:.4f})",
            trainer.epoch,
        )

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


__all__ = ["TensorBoardCallback", "STEP_SCALARS", "EPOCH_SCALARS"]

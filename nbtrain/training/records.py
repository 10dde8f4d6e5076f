"""What the training loop records and returns: the epoch row, its log line, and the Run.

An epoch row holds the epoch's statistics (``measures.epoch_stats`` of its step rows:
mean step loss, percentiles of the pre-clip norm, share of steps clipped), the
validation loss, the LR at the start of the epoch (``lr_start``) and after its scheduler
step (``lr``), and the epoch's wall time; under fp16's loss scaler (step rows carrying
``skipped``) also ``skipped_steps``, the steps the scaler skipped. The percentiles and the
maximum of the norm are over finite norms: a skipped step's infinite norm is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .. import measures
from .config import TrainConfig
from .history import History
from .runfolder import CHECKPOINT_FILE


@dataclass
class Run:
    """What ``train`` returns: the config, the history, the trained model and how it ended."""

    config: TrainConfig
    history: History
    model: nn.Module
    status: str  # "completed", "stopped" (stop flag) or "diverged" (non-finite loss/gradient)
    message: str = ""
    out_dir: Path | None = None
    compile_info: str = ""

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE

    def __repr__(self) -> str:
        where = f", out_dir={str(self.out_dir)!r}" if self.out_dir else ""
        return f"Run({self.config.label!r}, {self.status}, {self.history!r}{where})"


def epoch_row(epoch: int, steps: list[dict], val_loss: float, lr_start: float, lr: float, seconds: float) -> dict:
    """The History's row for one finished epoch (see the module's docstring)."""
    stats = measures.epoch_stats(steps)
    row = {
        "epoch": epoch,
        "train_loss": stats["train_loss"],
        "val_loss": val_loss,
        "lr": lr,
        "lr_start": lr_start,
        "grad_norm_p50": stats["grad_norm_p50"],
        "grad_norm_p90": stats["grad_norm_p90"],
        "grad_norm_max": stats["grad_norm_max"],
        "clip_fraction": stats["clip_fraction"],
        "n_steps": stats["n_steps"],
        "epoch_time_s": seconds,
    }
    if any("skipped" in r for r in steps):
        row["skipped_steps"] = sum(1 for r in steps if r.get("skipped"))
    return row


def epoch_label(epoch: int, epochs: int) -> str:
    """An epoch as every display names it: 0-based, with the run's range when the total is known,
    ``epoch_label(3, 7)`` -> ``"epoch 3 (of 0-6)"`` (never ``3/6`` or ``4/7``)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    return f"epoch {epoch} (of 0-{epochs - 1})"


def epoch_line(row: dict, epochs: int) -> str:
    """The log line of an epoch row: ``epoch 3 (of 0-6): train 0.4474  val 0.4199  lr 2e-05  grad
    norm p50 1.80 p90 3.11 max 7.03  clipped 41%  (2.2 s)`` (``epochs``: the run's total)."""
    skipped = f"  skipped {row['skipped_steps']}" if "skipped_steps" in row else ""
    return (
        f"{epoch_label(row['epoch'], epochs)}: train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
        f"lr {row['lr']:.3g}  grad norm p50 {row['grad_norm_p50']:.2f} p90 {row['grad_norm_p90']:.2f} "
        f"max {row['grad_norm_max']:.2f}  clipped {row['clip_fraction']:.0%}{skipped}  ({row['epoch_time_s']:.1f} s)"
    )


__all__ = ["Run", "epoch_label", "epoch_line", "epoch_row"]

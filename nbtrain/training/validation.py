"""The validation pass: the mean loss over the validation batches, on the trainer's device.

The mean is weighted by batch size (each batch's mean loss times its samples, summed, over
all samples), computed under the run's autocast and accumulated in float32 on the device,
with one host sync at the end.
"""

from __future__ import annotations

from typing import Callable, ContextManager

import torch
from torch import nn

from .batches import Batches, split_batch


@torch.no_grad()
def validation_loss(model: nn.Module, loss_fn: Callable, batches: Batches,
                    autocast: Callable[[], ContextManager]) -> float:
    """Mean validation loss of ``model`` (left in the mode it was in)."""
    was_training = model.training
    model.eval()
    total, n = None, 0
    for batch in batches.epoch(0):
        x, y = split_batch(batch)
        with autocast():
            loss = loss_fn(model(x), y).detach().float() * len(x)
        total = loss if total is None else total + loss
        n += len(x)
    if was_training:
        model.train()
    return float(total) / n


__all__ = ["validation_loss"]

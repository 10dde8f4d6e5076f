"""The gradient work of one optimizer step: accumulated backward, the pre-clip norm, clipping.

``accumulated_backward`` runs forward and backward over a step's micro-batches, each
loss scaled by its share of the step's samples, so N micro-batches of b give the gradient
of one batch of N*b (under fp16's loss scaler, backward runs on the loss times the scale;
the loss returned is the unscaled one). ``measure`` computes the total L2 norm of the
gradients (the norm BEFORE clipping, which is what is logged) and torch's clip coefficient
``clip / (norm + 1e-6)``, and brings them to the host with the loss, and the loss scaler's
scale and skip flag when there is one, in one sync.
``clip_gradients`` scales the gradients exactly when ``clip_grad_norm_`` would.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .batches import split_batch


def accumulated_backward(forward_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         group: list, scale: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Forward and backward over one step's micro-batches; returns the step's loss (on device).

    ``scale``: what backward runs on, given each weighted loss (the loss scaler's ``scale``).
    """
    pairs = [split_batch(b) for b in group]
    total = sum(len(x) for x, _ in pairs)
    loss_sum = None
    for x, y in pairs:
        loss = forward_loss(x, y)
        weighted = loss * (len(x) / total) if len(pairs) > 1 else loss
        (weighted if scale is None else scale(weighted)).backward()
        loss_sum = weighted.detach() if loss_sum is None else loss_sum + weighted.detach()
    return loss_sum


def measure(params: Sequence[torch.Tensor], loss: torch.Tensor, clip: float | None,
            extra: Sequence[torch.Tensor] = ()) -> tuple[float, float, float, torch.Tensor, list[float]]:
    """``(loss, pre-clip norm, clip coefficient, norm tensor, extra values)``, with one host sync.

    The coefficient is 1.0 without clipping; the norm tensor stays on the device for
    ``clip_gradients``; ``extra`` (device scalars: the loss scale, the skip flag) travels in the same sync.
    """
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    synced = [loss.float(), norm.float()]
    if clip is not None:
        synced.append((clip / (norm + 1e-6)).float())  # torch's clip coefficient
    synced += [t.reshape(()).float() for t in extra]
    values = torch.stack(synced).tolist()  # the one host sync
    n = 3 if clip is not None else 2
    return values[0], values[1], (values[2] if clip is not None else 1.0), norm, values[n:]


def clip_gradients(params: Sequence[torch.Tensor], max_norm: float | None, norm: torch.Tensor, coef: float) -> bool:
    """Scale the gradients to ``max_norm`` when the coefficient is below 1; returns whether it did.

    ``clip_grad_norm_`` is ``get_total_norm`` + ``clip_grads_with_norm_``; the latter multiplies
    every gradient by ``min(1, coef)`` without looking, to avoid a host sync. The loop syncs once
    per step anyway (for the records), so this scales only when the factor is below 1: the same
    result bit for bit, minus a read and a write of every gradient on the steps not clipped.
    """
    if max_norm is None or not coef < 1.0:
        return False
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
    return True


__all__ = ["accumulated_backward", "clip_gradients", "measure"]

"""The gradient numbers a recorder takes from a step, as torch defines them, with one host sync.

pre-clip norm
    ``torch.nn.utils.get_total_norm`` of the gradients (``foreach=None``, as
    ``clip_grad_norm_`` calls it): the total ``norm_type`` norm of all gradients viewed as
    one vector, before clipping.
clip coefficient
    ``max_norm / (norm + 1e-6)``, computed on the norm's device and dtype exactly as
    ``torch.nn.utils.clip_grads_with_norm_`` does. torch multiplies every gradient by
    ``min(coef, 1)``; a step is ``clipped`` when ``coef < 1`` and its ``clip_factor`` is
    then ``coef`` (1.0 otherwise), the definitions of nbtrain's own trainer.
loss-scaler skip
    ``GradScaler.update`` lowers the scale exactly when the step found an inf or NaN
    gradient and ``scaler.step`` skipped ``optimizer.step()``. A step is ``skipped`` when
    the scale after its update is below the scale it was taken with (``loss_scale``).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch

CLIP_EPS = 1e-6  # torch's clip_grads_with_norm_: coef = max_norm / (total_norm + 1e-6)


def pre_clip_norm(parameters: Iterable[torch.Tensor] | torch.Tensor,
                  norm_type: float | str = 2.0) -> torch.Tensor | None:
    """The total norm of the parameters' gradients (None when none has a gradient); no host sync."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, norm_type, error_if_nonfinite=False, foreach=None)


def clip_coefficient(norm: torch.Tensor, max_norm: float | None) -> torch.Tensor | None:
    """torch's clip coefficient for ``norm`` (None when clipping is off: ``max_norm`` None or inf)."""
    if max_norm is None or math.isinf(max_norm):
        return None
    return max_norm / (norm + CLIP_EPS)


def clip_fields(coef: float | None) -> dict:
    """``clipped`` and ``clip_factor`` of a step from its clip coefficient (None: clipping off)."""
    if coef is not None and coef < 1.0:
        return {"clipped": True, "clip_factor": coef}
    return {"clipped": False, "clip_factor": 1.0}


def host_values(values: Sequence[Any]) -> list[float | None]:
    """Python floats for ``values`` (tensors, numbers or None), with one host sync for all the tensors.

    The tensors are moved to the first tensor's device and promoted to a common floating
    dtype (float32 for float32/bfloat16/float16, float64 if any is float64), so each value
    is exact; None stays None.
    """
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    synced: list[float] = []
    first = tensors[0] if tensors else None
    if first is not None and first.dtype in (torch.float32, torch.float64) and all(
            t.dtype == first.dtype and t.device == first.device and t.dim() == 0 for t in tensors):
        synced = torch.stack(tensors).tolist()  # the one host sync (the usual case: float32 scalars)
    elif tensors:
        dtype = torch.float32
        for t in tensors:
            if t.is_floating_point():
                dtype = torch.promote_types(dtype, t.dtype)
        device = tensors[0].device
        stacked = torch.stack([t.detach().reshape(()).to(device=device, dtype=dtype) for t in tensors])
        synced = stacked.tolist()  # the one host sync
    out: list[float | None] = []
    it = iter(synced)
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(next(it))
        else:
            out.append(None if v is None else float(v))
    return out


def scaler_scale(scaler: Any) -> torch.Tensor | float | None:
    """The current scale of an enabled ``torch.amp.GradScaler`` (None when absent or disabled).

    The scale tensor itself when the scaler holds one (read without a host sync, from its
    ``_scale``), else ``get_scale()``.
    """
    if scaler is None or not scaler.is_enabled():
        return None
    scale = getattr(scaler, "_scale", None)
    return scale if isinstance(scale, torch.Tensor) else float(scaler.get_scale())


def initial_scale(scaler: Any) -> float | None:
    """The scale a fresh (or freshly loaded) GradScaler starts from: its ``_init_scale``."""
    value = getattr(scaler, "_init_scale", None)
    return float(value) if isinstance(value, (int, float)) else None


class ScaleTracker:
    """``loss_scale`` and ``skipped`` of each step from the scale after each update (see the module)."""

    def __init__(self) -> None:
        self.previous: float | None = None  # the scale after the last recorded update

    def fields(self, scale_after: float | None, scaler: Any = None) -> dict:
        """The step's fields from its post-update scale; the first step compares with the initial scale."""
        if scale_after is None:
            return {}
        before = self.previous if self.previous is not None else initial_scale(scaler)
        self.previous = scale_after
        if before is None:
            return {}
        return {"loss_scale": before, "skipped": scale_after < before}


def step_row(step: int, *, loss: Any = None, norm: Any = None, coef: Any = None, lr: Any = None,
             scale: Any = None, scales: ScaleTracker | None = None, scaler: Any = None,
             with_clip: bool = True, **known: Any) -> dict:
    """One History step row from a step's values (tensors, numbers or None), with one host sync.

    ``known``: more keys taken as given (``epoch``). ``grad_norm`` is written when ``norm`` is
    given, and with it ``clipped``/``clip_factor`` unless ``with_clip`` is False (clipping by
    value: neither is defined); ``loss_scale``/``skipped`` when ``scale`` and ``scales`` are given.
    """
    loss_v, norm_v, coef_v, lr_v, scale_v = host_values([loss, norm, coef, lr, scale])
    row: dict = {"step": step, **known}
    if loss_v is not None:
        row["loss"] = loss_v
    if lr_v is not None:
        row["lr"] = lr_v
    if norm_v is not None:
        row["grad_norm"] = norm_v
        if with_clip:
            row.update(clip_fields(coef_v))
    if scales is not None:
        row.update(scales.fields(scale_v, scaler))
    return row


def first_lr(optimizer: Any) -> Any:
    """The LR of the optimizer's first param group (a tensor LR stays a tensor, detached)."""
    lr = optimizer.param_groups[0].get("lr")
    return lr.detach() if isinstance(lr, torch.Tensor) else lr


def check_max_norm(max_norm: Any) -> float:
    """``max_norm`` as a float; ValueError/TypeError naming it when it is not a non-negative number."""
    if isinstance(max_norm, torch.Tensor) and max_norm.numel() == 1:
        max_norm = max_norm.item()
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)):
        raise TypeError(f"max_norm must be a number, got {type(max_norm).__name__}: {max_norm!r}")
    if math.isnan(max_norm) or max_norm < 0:
        raise ValueError(f"max_norm must be a non-negative number (inf: no clipping), got {max_norm!r}")
    return float(max_norm)


__all__ = [
    "CLIP_EPS",
    "ScaleTracker",
    "check_max_norm",
    "clip_coefficient",
    "clip_fields",
    "host_values",
    "initial_scale",
    "pre_clip_norm",
    "first_lr",
    "scaler_scale",
    "step_row",
]

"""Mixed precision in the training loop: autocast, and fp16's loss scaler with the steps it skips.

``"32"``
    nothing: float32 everywhere, the same run bit for bit as before precisions existed.
``"bf16-mixed"``
    forward and loss under ``torch.autocast(device_type, torch.bfloat16)``; no scaler (bf16
    has float32's exponent range, so gradients do not underflow).
``"16-mixed"``
    autocast in float16 and a ``torch.amp.GradScaler``: the loss is multiplied by the scale
    before backward; after backward the gradients are unscaled (``unscale_``), so the pre-clip
    norm the loop records is in true units and clipping acts on the true gradients. When the
    unscaled gradients hold inf or NaN the scaler's ``found_inf`` flag is set: the optimizer
    step is skipped and the scale multiplied by ``backoff_factor`` (0.5); after
    ``growth_interval`` (2000) clean steps in a row it is multiplied by ``growth_factor`` (2).

Under a scaler every step row carries ``loss_scale`` (the scale that step's loss was multiplied
by) and ``skipped`` (the scaler skipped the optimizer step). A skipped step is not divergence;
more than ``MAX_SKIPS_IN_A_ROW`` skips in a row is (the gradients are non-finite at every scale
tried), and the loop stops. The loop steps the optimizer itself rather than through
``scaler.step``: it already holds the skip flag on the host from the step's one sync, and
``scaler.step`` would read it again (a second sync per step). The scale and the skip flag are
read from the scaler's device tensors (``_get_scale_async``, ``_found_inf_per_device``), which
is what ``scaler.step`` itself reads.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Sequence

import torch

from .devices import autocast_dtype

MAX_SKIPS_IN_A_ROW = 50


class Precision:
    """A config's precision on one device: the autocast context and, for ``"16-mixed"``, the scaler."""

    def __init__(self, precision: str, device: torch.device) -> None:
        self.name = precision
        self.device_type = device.type
        self.dtype = autocast_dtype(precision)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None
        self.skips_in_a_row = 0

    def autocast(self) -> ContextManager:
        """``torch.autocast`` in the precision's dtype (a no-op context for ``"32"``)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call ``backward`` on: multiplied by the scale under a scaler."""
        return loss if self.scaler is None else self.scaler.scale(loss)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale and set the scaler's inf/NaN flag (no host sync)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def flags(self, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
        """Device scalars for the step's one sync: ``[scale, found_inf]`` under a scaler, else none."""
        if self.scaler is None:
            return []
        found = list(self.scaler._found_inf_per_device(optimizer).values())
        return [self.scaler._get_scale_async(), sum(found[1:], found[0])]

    def row_fields(self, values: Sequence[float]) -> dict:
        """The step row's ``loss_scale`` and ``skipped`` from the synced ``flags`` (empty without a scaler)."""
        if self.scaler is None:
            return {}
        return {"loss_scale": float(values[0]), "skipped": bool(values[1] > 0)}

    def step(self, optimizer: torch.optim.Optimizer, skipped: bool) -> None:
        """``optimizer.step()`` unless the scaler skips it; then the scaler's update of its scale."""
        if not skipped:
            optimizer.step()
        if self.scaler is not None:
            self.scaler.update()
            self.skips_in_a_row = self.skips_in_a_row + 1 if skipped else 0

    @property
    def keeps_skipping(self) -> bool:
        """More than ``MAX_SKIPS_IN_A_ROW`` steps in a row were skipped."""
        return self.skips_in_a_row > MAX_SKIPS_IN_A_ROW

    def state_dict(self) -> dict:
        """Plain Python values (the scaler's ``state_dict`` and the run of skips): device-agnostic."""
        return {
            "precision": self.name,
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "skips_in_a_row": self.skips_in_a_row,
        }

    def load_state_dict(self, state: dict | None) -> None:
        """Restore ``state_dict``'s values (None: a checkpoint from before precisions, a ``"32"`` run)."""
        if not state:
            return
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skips_in_a_row = int(state.get("skips_in_a_row", 0))


__all__ = ["MAX_SKIPS_IN_A_ROW", "Precision"]

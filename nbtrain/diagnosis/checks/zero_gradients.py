"""ZERO_GRADIENTS: a logged gradient norm of exactly 0 on steps with a nonzero loss.

A step counts when its logged pre-clip norm is exactly 0 and its own row does not log a
loss of 0 (or a non-finite one), in a run that logs some finite nonzero loss. The share is
over the steps with a logged norm; at least ``CRITICAL_SHARE`` of them makes it critical.
"""

from __future__ import annotations

import numpy as np

from ..findings import ZERO_GRADIENTS, Finding
from ..formatting import percent
from .context import Context

CRITICAL_SHARE = 0.5
LISTED = 5


def zero_gradient_steps(ctx: Context) -> np.ndarray | None:
    """Row positions of the steps that count (see the module's docstring); None when
    the log has no step norms or no nonzero loss."""
    data = ctx.data
    norms = data.col("grad_norm", "step")
    loss = data.col("loss", "step")
    if norms is None or loss is None:
        return None
    has_loss = data.logged("loss", "step")
    if not np.any(has_loss & np.isfinite(loss) & (loss != 0)):
        return None
    own_loss_bad = has_loss & ~(np.isfinite(loss) & (loss != 0))
    return np.flatnonzero(data.logged("grad_norm", "step") & (norms == 0) & ~own_loss_bad)


def check_zero_gradients(ctx: Context) -> None:
    rows = zero_gradient_steps(ctx)
    if rows is None or not len(rows):
        return
    n = int(ctx.data.logged("grad_norm", "step").sum())
    share = len(rows) / n
    steps = ctx.data.step_numbers()
    listed = ", ".join(f"{int(steps[i]):,}" for i in rows[:LISTED]) + (", ..." if len(rows) > LISTED else "")
    all_zero = len(rows) == n
    ctx.add(Finding(
        code=ZERO_GRADIENTS,
        severity="critical" if share >= CRITICAL_SHARE else "warning",
        title="Zero gradients",
        problem=f"The logged gradient norm is exactly 0 on {len(rows)} of {n} steps ({percent(share)}) while the loss "
        "is not 0" + (": no step updated the model." if all_zero else "."),
        evidence={"count": len(rows), "steps_with_norm": n, "share": share,
                  "first_steps": [int(steps[i]) for i in rows[:10]], "critical_share": CRITICAL_SHARE},
        evidence_text=[f"Steps with a zero norm: {listed}."],
        explanation="A nonzero loss with an exactly zero gradient means no trainable parameter depends on the "
        "loss: the parameters are frozen (requires_grad False, or not given to the optimizer), the graph was "
        "detached (.detach(), .item(), a NumPy round trip, torch.no_grad around the forward pass), or the norm is "
        "logged from the wrong place (after zero_grad, or from a model other than the one trained).",
        suggestion="Check which parameters have requires_grad and a .grad after backward(); log the norm between "
        "backward() and optimizer.step().",
        rationale="With zero gradients the optimizer changes nothing, whatever the LR.",
        monitor="A positive gradient norm on every step.",
    ))


__all__ = ["CRITICAL_SHARE", "check_zero_gradients", "zero_gradient_steps"]

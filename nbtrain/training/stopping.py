"""Why a run stops early, as the history records it (``meta["non_finite_step"]``) and the log says it.

A non-finite loss, or a non-finite gradient norm on a step the loss scaler did not skip,
stops the run at once. Under fp16's loss scaler a skipped step does not; more than
``precision.MAX_SKIPS_IN_A_ROW`` skipped steps in a row does (the gradients are non-finite at
every scale tried). Either way the step is recorded in ``meta["non_finite_step"]`` (``epoch``,
``step``, ``loss``, ``grad_norm``, ``lr``; ``skipped_in_a_row`` for the scaler's case), the
run's status becomes ``"diverged"``, the history keeps every recorded step and the run
folder keeps its last good (end-of-epoch) checkpoint.
"""

from __future__ import annotations

import math

from .precision import MAX_SKIPS_IN_A_ROW


def non_finite(epoch: int, step: int, i: int, loss: float, norm: float, lr: float) -> tuple[dict, str]:
    """``(meta record, reason)`` for a step whose loss or (unskipped) gradient norm is not finite."""
    what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", norm)
    record = {"epoch": epoch, "step": step, "loss": loss, "grad_norm": norm, "lr": lr}
    return record, f"non-finite {what} ({value}) at step {step} (epoch {epoch}, batch {i})"


def keeps_skipping(row: dict, i: int, skips: int) -> tuple[dict, str]:
    """``(meta record, reason)`` for the step row at which the loss scaler had skipped ``skips`` steps in a row."""
    record = {k: row[k] for k in ("epoch", "step", "loss", "grad_norm", "lr")}
    record["skipped_in_a_row"] = skips
    reason = (f"the fp16 loss scaler skipped more than {MAX_SKIPS_IN_A_ROW} steps in a row ({skips}, the last at "
              f"step {row['step']} (epoch {row['epoch']}, batch {i}) at loss scale {row['loss_scale']:g}): the "
              "gradients are non-finite at every scale tried")
    return record, reason


def stopped_message(reason: str, has_folder: bool) -> str:
    """The log line (and ``Run.message``) of a run stopped for ``reason``."""
    kept = "the last good checkpoint is kept" if has_folder else "no checkpoint folder was given"
    return f"training stopped: {reason}; {kept}; the history up to the last good step is kept"


__all__ = ["keeps_skipping", "non_finite", "stopped_message"]

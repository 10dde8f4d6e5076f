"""The config changes the checks suggest, each with the sentence that states it.

A finding's suggestion is a list of sentences; those that name a config change are
:class:`~nbtrain.diagnosis.findings.Change` s (``Change.text`` is the sentence), so that
``diagnose(..., tried=...)`` can replace the sentence of a change already measured with its
result (``nbtrain.diagnosis.alternatives``). ``compose`` joins the sentences and keeps the
changes. Example values come from the run's own settings: half the LR, twice the batch.
"""

from __future__ import annotations

from typing import Any

from ..findings import Change
from ..formatting import sci, sig
from .context import Context

Part = Change | str


def compose(*parts: Part | None) -> tuple[str, list[Change]]:
    """``(suggestion text, changes)`` from sentences and changes (None parts are left out)."""
    kept = [p for p in parts if p]
    text = " ".join(p.text if isinstance(p, Change) else p for p in kept)
    return text, [p for p in kept if isinstance(p, Change)]


def config_value(ctx: Context, name: str) -> Any:
    """A config field of the diagnosed run (``Context.config``), or None when not known."""
    return (ctx.config or {}).get(name)


def lower_lr(ctx: Context, lead: str = "Lower the learning rate", why: str = "") -> Change:
    """Halve the LR (the example uses the run's LR when it is known); ``why``: a clause after a colon."""
    lr = ctx.s.lr
    example = f" (e.g. {sci(lr)} → {sci(lr / 2)})" if lr else ""
    return Change("lr", "lower", lr / 2 if lr else None, f"{lead}{example}" + (f": {why}." if why else "."))


def clip_near(ctx: Context, value: float | None, source: str) -> Change | None:
    """Set the clip threshold near ``value`` (the Playbook's 90th percentile of healthy norms)."""
    if value is None:
        return None
    return Change("grad_clip", "to", float(value), f"Set the clip threshold near {sig(value, 3)}, the {source}.")


def avoid_raising_clip(ctx: Context, why: str) -> Change | None:
    """Advise against a higher threshold (only when the run clips at all)."""
    if ctx.s.grad_clip is None:
        return None
    return Change("grad_clip", "higher", None, f"Do not raise the clip threshold {why}.", advise="avoid")


def larger_batch(ctx: Context, lead: str = "A larger batch") -> Change:
    batch = config_value(ctx, "batch_size")
    example = f" (e.g. {batch} → {2 * batch})" if isinstance(batch, int) else ""
    return Change("batch_size", "higher", 2 * batch if isinstance(batch, int) else None,
                  f"{lead}{example} lowers the gradient noise.")


def more_accumulation(ctx: Context) -> Change:
    accum = config_value(ctx, "grad_accum_steps")
    example = f" (e.g. {accum} → {2 * accum} batches per step)" if isinstance(accum, int) else ""
    return Change("grad_accum_steps", "higher", 2 * accum if isinstance(accum, int) else None,
                  f"Gradient accumulation{example} lowers the gradient noise the same way, without more memory.")


def lower_patience(ctx: Context, text: str, value: int | None = None) -> Change:
    return Change("scheduler_patience", "lower", value, text)


def more_epochs(ctx: Context, text: str, value: int | None = None) -> Change:
    return Change("epochs", "higher", value, text)


__all__ = ["avoid_raising_clip", "clip_near", "compose", "config_value", "larger_batch", "lower_lr",
           "lower_patience", "more_accumulation", "more_epochs"]

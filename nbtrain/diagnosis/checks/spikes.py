"""GRADIENT_SPIKES and LOSS_SPIKES: single steps far above the run's own running median.

A spike is ``measures.spikes`` on the logged step values: at least ``SPIKE_RATIO`` (10)
times the median of the ``SPIKE_WINDOW`` (50) values before it. Thresholds are relative to
the run itself, so norms of 1e5 can be normal; a steady rise moves the median with it and
stays GRADIENT_GROWTH's. Spikes on consecutive logged values form one episode (a jump that
lasts until the running median catches up is one episode, not many spikes). A loss episode
has recovered when the median of up to ``RECOVERY_WINDOW`` logged losses after it is back
within ``RECOVERED_RATIO`` of the median before it; one that did not makes the finding a
warning (else info).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import measures
from ..findings import GRADIENT_SPIKES, LOSS_SPIKES, Finding
from ..formatting import num
from .advice import clip_near, compose, lower_lr
from .clipping import suggested_clip
from .context import PLAYBOOK, Context

MIN_STEPS = measures.SPIKE_MIN_HISTORY + 1
LISTED = 5  # spikes named in the evidence text (the largest)
RECOVERY_WINDOW = 50
RECOVERED_RATIO = 2.0


def _found(ctx: Context, name: str, what: str) -> tuple[np.ndarray, list[measures.Spike]] | None:
    """(step numbers of the logged values, spikes), or None after noting why it could not check."""
    got = ctx.data.step_values(name)
    if got is None:
        ctx.skip(f"no step {name} column: {what} not checked")
        return None
    rows, values = got
    usable = int(np.sum(np.isfinite(values) & (values > 0)))
    if usable < MIN_STEPS:
        ctx.skip(f"only {usable} positive finite step {name} values: {what} need at least {MIN_STEPS}")
        return None
    return ctx.data.step_numbers()[rows], measures.spikes(values.tolist())


def episodes(found: list[measures.Spike]) -> list[list[measures.Spike]]:
    """The spikes grouped into runs of consecutive logged values."""
    out: list[list[measures.Spike]] = []
    for s in found:
        if out and s.index == out[-1][-1].index + 1:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def _evidence(steps: np.ndarray, found: list[measures.Spike], n: int) -> dict[str, Any]:
    return {
        "count": len(found), "share": len(found) / n, "steps": [int(steps[s.index]) for s in found],
        "episodes": [[int(steps[e[0].index]), int(steps[e[-1].index]), len(e)] for e in episodes(found)],
        "values": [s.value for s in found], "running_medians": [s.median for s in found],
        "ratios": [s.ratio for s in found], "largest_ratio": max(s.ratio for s in found),
        "thresholds": {"ratio": measures.SPIKE_RATIO, "window": measures.SPIKE_WINDOW,
                       "min_history": measures.SPIKE_MIN_HISTORY},
    }


def _listed(steps: np.ndarray, found: list[measures.Spike]) -> str:
    top = sorted(found, key=lambda s: -s.ratio)[:LISTED]
    return "; ".join(f"step {int(steps[s.index]):,}: {num(s.value)} ({s.ratio:,.0f}× the median {num(s.median)})"
                     for s in sorted(top, key=lambda s: s.index))


def _runs_text(steps: np.ndarray, found: list[measures.Spike]) -> list[str]:
    """A sentence for the episodes longer than one step (a lasting jump, not single spikes)."""
    long = [e for e in episodes(found) if len(e) > 1]
    if not long:
        return []
    runs = ", ".join(f"steps {int(steps[e[0].index]):,}-{int(steps[e[-1].index]):,} ({len(e)} logged steps)"
                     for e in long[:LISTED])
    return [f"Consecutive steps above the threshold form a lasting jump rather than single spikes: {runs}."]


def check_gradient_spikes(ctx: Context) -> None:
    got = _found(ctx, "grad_norm", "gradient spikes")
    if got is None or not got[1]:
        return
    steps, found = got
    n = len(steps)
    evidence = _evidence(steps, found, n)
    clip = ctx.s.grad_clip
    text = [f"{len(found)} of {n} logged steps: {_listed(steps, found)}."] + _runs_text(steps, found)
    if clip is not None:
        evidence["grad_clip"] = clip
        text.append(_clipped_text(found, clip))
    healthy, source = suggested_clip(ctx)
    suggestion, changes = compose(
        "Look at the batches of these steps.",
        clip_near(ctx, healthy, f"{source}, so spikes are cut without touching the ordinary steps")
        or "Keep (or add) clipping with the threshold near the 90th percentile of the healthy norms, so spikes are "
        "cut without touching the ordinary steps.",
    )
    ctx.add(Finding(
        code=GRADIENT_SPIKES,
        severity="warning",
        title="Gradient spikes",
        problem=f"{len(found)} step(s) had a pre-clip gradient norm at least {measures.SPIKE_RATIO:g}× the running "
        f"median of the {measures.SPIKE_WINDOW} steps before them (largest {evidence['largest_ratio']:,.0f}×).",
        evidence=evidence,
        evidence_text=text,
        explanation="A single step far above the norms around it is not growth: it comes from one batch (an "
        "outlier sample, a mislabeled or corrupt example, an extreme target), from a rare sharp region the "
        "optimizer stepped into, or from Adam's second-moment estimate lagging after a quiet stretch. Without "
        "clipping such a step can undo much of the training so far.",
        suggestion=suggestion,
        changes=changes,
        rationale=f"{PLAYBOOK}: clipping is meant for exactly these rare large gradients.",
        monitor="No step above 10× the running median norm; the loss right after each spike.",
    ))


def _clipped_text(found: list[measures.Spike], clip: float) -> str:
    """How many of the spikes clipping scaled down (those above the threshold), and by how much."""
    above = [s for s in found if s.value > clip]
    if not above:
        return (f"These are norms before clipping at {num(clip)}: none of the spikes reached the threshold, so "
                "clipping did not touch them.")
    largest = max(s.value for s in above)
    which = "each of them" if len(above) == len(found) else f"{len(above)} of the {len(found)} (those above it)"
    return (f"These are norms before clipping at {num(clip)}: clipping scaled {which} down to the threshold (the "
            f"largest to {num(clip / largest)}× its length).")


def _recovered(values: np.ndarray, episode: list[measures.Spike]) -> bool:
    end = episode[-1].index + 1
    after = [v for v in values[end: end + RECOVERY_WINDOW] if np.isfinite(v)]
    return not after or measures.percentile(after, 50) <= RECOVERED_RATIO * episode[0].median


def check_loss_spikes(ctx: Context) -> None:
    got = _found(ctx, "loss", "loss spikes")
    if got is None or not got[1]:
        return
    steps, found = got
    values = ctx.data.step_values("loss")[1]
    stuck = [e[0] for e in episodes(found) if not _recovered(values, e)]
    evidence = _evidence(steps, found, len(steps))
    evidence["not_recovered_steps"] = [int(steps[s.index]) for s in stuck]
    text = [f"{len(found)} of {len(steps)} logged steps: {_listed(steps, found)}."] + _runs_text(steps, found)
    text.append(f"The loss did not come back within {RECOVERED_RATIO:g}× of its earlier median after step(s) "
                f"{', '.join(f'{s:,}' for s in evidence['not_recovered_steps'])}." if stuck else
                "After each spike the loss came back to its earlier level.")
    if stuck:
        suggestion, changes = compose(
            "Check the batches of these steps.",
            lower_lr(ctx, "The loss stayed high after a spike: restart from a checkpoint before it with a lower "
                          "learning rate"),
            "Or clip the gradient norm." if ctx.s.grad_clip is None else None,
        )
    else:
        suggestion, changes = compose("Check the batches of these steps (outliers or corrupt examples); the loss "
                                      "came back each time, so the optimizer needs no change for them.")
    ctx.add(Finding(
        code=LOSS_SPIKES,
        severity="warning" if stuck else "info",
        title="Loss spikes",
        problem=f"{len(found)} step(s) had a training loss at least {measures.SPIKE_RATIO:g}× the running median of "
        f"the {measures.SPIKE_WINDOW} steps before them" + (", and the loss did not recover." if stuck else "."),
        evidence=evidence,
        evidence_text=text,
        explanation="A loss spike on one step is one batch the model gets badly wrong (an outlier or corrupt "
        "example) or an update that overshot; when the loss stays high afterwards, the update damaged the model "
        "(too large a step, often together with a gradient spike).",
        suggestion=suggestion,
        changes=changes,
        rationale="Isolated spikes that recover are data; spikes that do not recover are optimization.",
        monitor="The running median of the loss after each spike back at its earlier level within a few steps.",
    ))


__all__ = ["MIN_STEPS", "RECOVERED_RATIO", "RECOVERY_WINDOW", "check_gradient_spikes", "check_loss_spikes"]

"""HEAVY_CLIPPING, and the clipping numbers the gradient check quotes too.

The share of steps clipped is ``RunData.clip_fraction`` (``measures.clip_fraction``); the
last epoch's share is its ``clip_fraction`` row. Without either, epochs whose median
pre-clip norm exceeds the threshold stand in (at least half of their steps were clipped).
The texts quote the measured shares ("30% of the optimizer steps were clipped (52% in the
last epoch)"); "most" only where the share is over half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..findings import HEAVY_CLIPPING, Finding
from ..formatting import join, num, percent
from .advice import avoid_raising_clip, clip_near, compose, lower_lr
from .context import PLAYBOOK, Context

HEAVY_CLIP_FRACTION = 0.5  # the Tuning Playbook's "about half of all updates"


@dataclass
class ClipShare:
    """Share of steps clipped: over the run, in its last epoch, and where it came from."""

    overall: float | None
    last: float | None
    source: str
    noun: str = "epoch"  # what the run's evaluation points are called

    @property
    def heavy_overall(self) -> bool:
        return self.overall is not None and self.overall > HEAVY_CLIP_FRACTION

    @property
    def heavy_last(self) -> bool:
        return self.last is not None and self.last > HEAVY_CLIP_FRACTION

    def sentence(self, subject: str = "of all steps were clipped") -> str:
        """``"47% of all steps were clipped (step rows); 62% in the last epoch."``"""
        text = f"{percent(self.overall)} {subject} ({self.source})"
        return text + (f"; {percent(self.last)} in the last {self.noun}." if self.last is not None else ".")


def clip_share(ctx: Context) -> ClipShare:
    overall, source = ctx.data.clip_fraction()
    per_epoch = ctx.data.col("clip_fraction")
    last = float(per_epoch[-1]) if per_epoch is not None and math.isfinite(per_epoch[-1]) else None
    if overall is None:
        last = None
    return ClipShare(overall, last, source, ctx.u.noun)


def suggested_clip(ctx: Context) -> tuple[float | None, str]:
    """The Playbook's default threshold: the 90th percentile of the first epoch's pre-clip norms."""
    p90 = ctx.data.col("grad_norm_p90")
    if p90 is not None and math.isfinite(p90[0]):
        if ctx.u.whole_epochs:
            return float(p90[0]), f"90th percentile of epoch {ctx.epochs[0]}'s pre-clip norms"
        return float(p90[0]), f"90th percentile of the pre-clip norms up to {ctx.u.at(ctx.epochs[0])}"
    return None, ""


def _epochs_median_above(ctx: Context) -> list[int]:
    clip, p50 = ctx.s.grad_clip, ctx.data.col("grad_norm_p50")
    if clip is None or p50 is None:
        return []
    return [ctx.epochs[i] for i, v in enumerate(p50) if math.isfinite(v) and v > clip]


def check_clipping(ctx: Context) -> None:
    share = clip_share(ctx)
    over_half = _epochs_median_above(ctx)
    if share.overall is None and not over_half:
        if ctx.s.grad_clip is None and not ctx.s.clip_known:
            ctx.skip("clip threshold unknown and no clip_fraction column or step 'clipped' flags: clipping not checked")
        elif ctx.s.grad_clip is None:
            ctx.skip("clipping is off (grad_clip None): clipping frequency not checked")
        else:
            ctx.skip("no clip_fraction column, step 'clipped' flags or grad_norm_p50: clipping frequency not checked")
        return
    if share.overall is not None:
        heavy = share.heavy_overall or share.heavy_last
    else:  # medians only: over half clipped in the last epoch, or in most epochs
        heavy = ctx.epochs[-1] in over_half or len(over_half) > ctx.data.n_epochs / 2
    if heavy:
        ctx.add(_heavy_clipping(ctx, share, over_half))


def _problem(ctx: Context, share: ClipShare, over_half: list[int]) -> str:
    """What was clipped, in the measured numbers: ``"30% of the optimizer steps were clipped at the
    threshold 2 (52% in the last epoch)."``; from medians alone, the epochs where at least half were."""
    clip, n = ctx.s.grad_clip, ctx.u.noun
    at = f" at the threshold {num(clip)}" if clip is not None else ""
    if share.overall is not None:
        last = f" ({percent(share.last)} in the last {n})" if share.last is not None else ""
        return f"{percent(share.overall)} of the optimizer steps were clipped{at}{last}."
    return (f"At least half of the optimizer steps were clipped{at} in {ctx.u.some(over_half)} "
            f"({len(over_half)} of {ctx.data.n_epochs} {ctx.u.nouns}): the median pre-clip norm was above it there.")


def _title(ctx: Context, share: ClipShare) -> str:
    if share.heavy_overall:
        return "Clipping most updates"
    if share.heavy_last:
        return f"Clipping most updates in the last {ctx.u.noun}"
    return f"Clipping at least half of the updates in some {ctx.u.nouns}"


def _heavy_clipping(ctx: Context, share: ClipShare, over_half: list[int]) -> Finding:
    clip = ctx.s.grad_clip
    evidence: dict[str, Any] = {"threshold_fraction": HEAVY_CLIP_FRACTION, "grad_clip": clip}
    text = []
    if share.overall is not None:
        evidence.update({"clip_fraction": share.overall, "clip_fraction_last_epoch": share.last})
        text.append(share.sentence())
        per_epoch = ctx.data.col("clip_fraction")
        if per_epoch is not None:
            text.append(f"Clipped share per {ctx.u.noun}: {join(per_epoch, percent)}.")
    if over_half:
        evidence["epochs_median_above_clip"] = over_half
        text.append(f"The median pre-clip norm exceeded the threshold {num(clip)} in {ctx.u.some(over_half)}: at "
                    f"least half of those {ctx.u.nouns}' steps were clipped.")
    healthy, healthy_source = suggested_clip(ctx)
    evidence["suggested_clip"] = healthy
    raise_example = " (say 2.0 → 3.0)" if ctx.reference else ""
    suggestion, changes = compose(
        lower_lr(ctx),
        avoid_raising_clip(ctx, "instead: with Adam a higher threshold may change little (see the root cause)"),
        clip_near(ctx, healthy, healthy_source),
    )
    return Finding(
        code=HEAVY_CLIPPING,
        severity="warning",
        title=_title(ctx, share),
        problem=_problem(ctx, share, over_half),
        evidence=evidence,
        evidence_text=text,
        explanation=f"{PLAYBOOK} calls clipping more than about half of all updates extremely aggressive: clipping "
        "then sets the step size, doing the optimizer's job. With Adam, which divides by a running RMS of the "
        "gradient, rescaling nearly every gradient by a similar factor changes the steps little, so raising the "
        f"threshold{raise_example} may change little too.",
        suggestion=suggestion,
        changes=changes,
        rationale="A smaller LR addresses why the gradients are large; the threshold near the 90th percentile "
        "of healthy norms keeps clipping for the rare spikes it is meant for.",
        monitor=f"Clip fraction per {ctx.u.noun} well under 50% (near 10% with a p90 threshold).",
    )


__all__ = ["ClipShare", "HEAVY_CLIP_FRACTION", "check_clipping", "clip_share", "suggested_clip"]

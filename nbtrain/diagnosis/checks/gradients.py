"""GRADIENT_GROWTH: pre-clip gradient norms that grew over the run.

The growth ratio is ``RunData.growth`` (defined in ``nbtrain.measures``): the statistic
(median, 90th percentile, largest) of the late third of the epochs' pooled pre-clip norms
over the same statistic of the first epoch, so ``diagnose``, ``summarize`` and
``round1_symptoms`` show one number for one run. A statistic counts as growing when that
ratio is at least ``GROWTH_RATIO`` and a log-linear fit of its per-epoch values rises by at
least ``GROWTH_PER_EPOCH`` per epoch (a trend, not one late spike). The problem quotes the
growth of every statistic measured, the median first (``summarize``'s
``grad_norm_growth_p50``), each with 3 significant figures as the tables show it.

The suggested threshold is the Tuning Playbook's default, the 90th percentile of the first
epoch's pre-clip norms (``suggested_clip``). On a run whose norms grew, that threshold sits
below most late norms, so the suggestion says what it would have done to this run:
``late_share_clipped``, the share of the late window's steps (the growth's window) that
``clip_grad_norm_`` would have scaled at it. A step counts as clipped as a logged ``clipped``
flag does: torch's coefficient ``threshold / (norm + 1e-6)`` below 1, over the finite step
norms (``RunData.norms_by_epoch``); the share is ``measures.clip_fraction`` of those flags.
Above ``HEAVY_CLIP_FRACTION`` (half: HEAVY_CLIPPING's rule) the sentence says to bring the
growth down first. Without step norms the share is unknown and not quoted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import measures
from ..findings import GRADIENT_GROWTH, Change, Finding
from ..formatting import join, num, percent, sig, times
from ..run_data import RunData
from .advice import avoid_raising_clip, compose, lower_lr
from .clipping import HEAVY_CLIP_FRACTION, clip_share, suggested_clip
from .context import PLAYBOOK, Context

GROWTH_RATIO = 2.0  # RunData.growth ratio (late third vs first epoch) of a norm statistic
GROWTH_PER_EPOCH = 1.1  # exp(slope of log norm vs epoch)
CRITICAL_GROWTH_RATIO = 5.0
NAMES = {"p50": "Median", "p90": "90th-percentile", "max": "Largest"}
TORCH_CLIP_EPS = 1e-6  # clip_grad_norm_'s coefficient: threshold / (norm + 1e-6), clipped when below 1


def log_linear_trend(epochs: list[float], values: np.ndarray) -> float | None:
    """``exp(slope)`` of ``log(value)`` against the epoch (``RunData.positions``: the epoch, or
    the evaluation's position) over the finite positive values (the factor per epoch or
    evaluation); None with fewer than 3 of them."""
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 3:
        return None
    slope = np.polyfit(np.asarray(epochs, dtype=float)[ok], np.log(values[ok]), 1)[0]
    return math.exp(float(slope))


def growth_evidence(ctx: Context) -> dict[str, dict]:
    """Per statistic (``grad_norm_p50``/``p90``/``max``): the growth and the per-epoch trend."""
    out = {}
    for stat in measures.GROWTH_STATS:
        series = ctx.data.col(f"grad_norm_{stat}")
        growth = ctx.data.growth(stat)
        trend = None if series is None else log_linear_trend(ctx.data.positions, series)
        if growth is None or trend is None:
            continue
        out[f"grad_norm_{stat}"] = {
            "first": growth.first, "late": growth.late, "ratio": growth.ratio, "first_epoch": growth.first_epoch,
            "late_epochs": list(growth.late_epochs), "source": growth.source, "growth_per_epoch": trend,
            "per_epoch": [float(v) for v in series],
        }
    return out


def check_gradients(ctx: Context) -> None:
    if all(ctx.data.col(f"grad_norm_{stat}") is None for stat in measures.GROWTH_STATS):
        ctx.skip("no grad_norm columns (grad_norm_p50/p90/max or step grad_norm): gradient growth not checked")
        return
    if ctx.data.n_epochs < 3:
        ctx.skip(f"only {ctx.data.n_epochs} {ctx.u.noun}(s): gradient growth needs at least 3")
        return
    stats = growth_evidence(ctx)
    growing = {k: v for k, v in stats.items()
               if v["ratio"] >= GROWTH_RATIO and v["growth_per_epoch"] >= GROWTH_PER_EPOCH}
    if growing:
        ctx.add(_gradient_growth(ctx, stats, growing))


def _problem(ctx: Context, stats: dict[str, dict]) -> str:
    """The growth of every statistic measured (the median first: the number ``summarize`` shows)."""
    parts = [f"{NAMES[k.rsplit('_', 1)[1]].lower()} {times(v['ratio'])}" + (" (no growth)" if v["ratio"] < 1 else "")
             for k, v in stats.items()]
    row, u = next(iter(stats.values())), ctx.u
    return (f"Pre-clip gradient norms grew over {ctx.data.n_epochs} {u.nouns}: {', '.join(parts)} "
            f"({u.span(row['late_epochs'])}, the last third, against {u.at(row['first_epoch'])}).")


def _clip_text(ctx: Context, evidence: dict[str, Any]) -> list[str]:
    text = []
    clip = ctx.s.grad_clip
    largest, _ = ctx.data.largest_norm()
    if clip is not None and largest is not None:
        scale = min(1.0, clip / largest) if largest > 0 else 1.0
        evidence["clip_scale_at_largest"] = scale
        text.append(f"These are norms BEFORE clipping at {num(clip)}: the largest, {num(largest)}, was scaled by "
                    f"{scale:.2f} (to {scale:.0%} of its length). Values above the threshold show how hard clipping "
                    "bites, not that it failed.")
    share = clip_share(ctx)
    if share.overall is not None:
        evidence["clip_fraction"] = share.overall
        evidence["clip_fraction_last_epoch"] = share.last
        text.append(share.sentence())
    return text


def _clip_share_advice(ctx: Context) -> str:
    """The Playbook's rule, when the measured clip share is over half (overall or in the last point)."""
    share = clip_share(ctx)
    if not (share.heavy_overall or share.heavy_last):
        return ""
    last = f"{percent(share.last)} of the last {ctx.u.noun}'s steps" if share.last is not None else ""
    measured = (f"{percent(share.overall)} of all steps were clipped" + (f" ({last})" if last else "")
                if share.heavy_overall else f"{last} were clipped ({percent(share.overall)} overall)")
    return (f"{measured}, and when clipping acts on more than about half of the steps {PLAYBOOK} recommends a "
            "lower LR over any threshold change")


def late_share_clipped(data: RunData, threshold: float, late_epochs: list) -> float | None:
    """Share of the steps of ``late_epochs`` that ``clip_grad_norm_`` at ``threshold`` would have
    clipped (see the module's docstring); None without finite step norms there."""
    grouped = data.norms_by_epoch() or {}
    norms = measures.finite(n for e in late_epochs for n in grouped.get(e, ()))
    if not norms:
        return None
    share, _ = measures.clip_fraction(clipped=[threshold / (n + TORCH_CLIP_EPS) < 1 for n in norms])
    return share


def _clip_change(ctx: Context, healthy: float | None, source: str, late_epochs: list,
                 evidence: dict[str, Any]) -> Change | None:
    """Set the threshold near the Playbook's default, with what it would have clipped on this run."""
    if healthy is None:
        return None
    share = late_share_clipped(ctx.data, healthy, late_epochs)
    evidence["suggested_clip_late_share"] = share
    text = f"Set the clip threshold near {sig(healthy, 3)}, the {source} (a healthy {ctx.u.noun})"
    if share is not None:
        text += f"; on this run it would have clipped {percent(share)} of the steps of {ctx.u.span(late_epochs)}"
        if share > HEAVY_CLIP_FRACTION:
            text += ", more than the half above which clipping does the optimizer's job, so first bring the growth down"
    return Change("grad_clip", "to", float(healthy), text + ".")


def _suggestion(ctx: Context, clip: Change | None):
    return compose(
        lower_lr(ctx, why=_clip_share_advice(ctx)),
        clip,
        avoid_raising_clip(ctx, "to make room for the grown norms"),
    )


def _gradient_growth(ctx: Context, stats: dict[str, dict], growing: dict[str, dict]) -> Finding:
    worst, u = max(v["ratio"] for v in growing.values()), ctx.u
    text = [f"{NAMES[k.rsplit('_', 1)[1]]} pre-clip norm per {u.noun}: {join(v['per_epoch'], num)}; "
            f"{num(v['late'])} over {u.span(v['late_epochs'])} (the last third, pooled) vs {num(v['first'])} in "
            f"{u.at(v['first_epoch'])}: {times(v['ratio'])}, about ×{v['growth_per_epoch']:.2f} per {u.noun} on a "
            "log-linear fit." for k, v in stats.items()]
    evidence: dict[str, Any] = {"thresholds": {"ratio": GROWTH_RATIO, "growth_per_epoch": GROWTH_PER_EPOCH}}
    evidence.update(stats)
    evidence["grad_clip"] = ctx.s.grad_clip
    text += _clip_text(ctx, evidence)
    healthy, healthy_source = suggested_clip(ctx)
    evidence["suggested_clip"] = healthy
    dynamics = ("the target's dynamics make gradients grow as they are learned (chaotic systems do)" if ctx.reference
                else "the target's structure makes gradients grow as it is learned")
    late = next(iter(stats.values()))["late_epochs"]
    suggestion, changes = _suggestion(ctx, _clip_change(ctx, healthy, healthy_source, late, evidence))
    return Finding(
        code=GRADIENT_GROWTH,
        severity="critical" if worst >= CRITICAL_GROWTH_RATIO else "warning",
        title="Gradient norms growing",
        problem=_problem(ctx, stats),
        evidence=evidence,
        evidence_text=text,
        explanation="`clip_grad_norm_` returns (and nbtrain logs) the norm before clipping, so growth means the raw "
        "gradients themselves got larger: the model moved into sharper regions of the loss landscape than the LR "
        f"can handle (with Adam the preconditioned sharpness tends to settle near 38/lr), or {dynamics}, or the "
        "inputs or targets are poorly scaled. Clipping hides this from the update size but not from the log.",
        suggestion=suggestion,
        changes=changes,
        rationale=f"{PLAYBOOK}: log the unclipped norm and set the threshold near the 90th percentile of observed "
        "norms; a smaller LR takes smaller steps into sharp regions. With Adam, a constant rescaling of the gradient "
        "is largely divided out by its running RMS, so a different threshold alone changes little: measure it.",
        monitor=f"The median and largest pre-clip norm of the late {u.nouns} staying near the first {u.noun}'s, and "
        "the clip fraction staying low.",
    )


__all__ = ["CRITICAL_GROWTH_RATIO", "GROWTH_PER_EPOCH", "GROWTH_RATIO", "TORCH_CLIP_EPS", "check_gradients",
           "late_share_clipped", "log_linear_trend"]

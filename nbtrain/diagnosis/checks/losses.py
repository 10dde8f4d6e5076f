"""The losses: VAL_FLUCTUATING, OVERFITTING, TRAIN_LOSS_PLATEAU.

``recent_improvement`` (the training-loss plateau rule) is shared with the expectation
``train_loss_decreasing``. VAL_FLUCTUATING's title and problem say how the validation loss
moved after its best (up and down, only up, back toward it, flat), from its measured rises
and falls; TRAIN_LOSS_PLATEAU's fix follows the run's own numbers (heavy clipping, LR cuts).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ... import measures
from ..findings import OVERFITTING, TRAIN_LOSS_PLATEAU, VAL_FLUCTUATING, Change, Finding
from ..formatting import join, num, percent, sci
from .advice import compose, config_value, larger_batch, lower_lr, lower_patience, more_accumulation
from .clipping import clip_share
from .context import Context
from .lr_adaptation import MIN_STALL_EPOCHS

PLATEAU_WINDOW = 3  # TRAIN_LOSS_PLATEAU: epochs
PLATEAU_MIN_IMPROVEMENT = 0.01  # relative
OVERFIT_WINDOW = 4  # OVERFITTING: last epochs compared


def recent_improvement(losses: Sequence[float], window: int = PLATEAU_WINDOW) -> tuple[float, float, float]:
    """``(best before, best within, relative gain)``: how much the best of the last ``window``
    values improved on the best before them (0 when the earlier best is 0)."""
    before, recent = float(np.min(losses[:-window])), float(np.min(losses[-window:]))
    return before, recent, (before - recent) / abs(before) if before != 0 else 0.0


# -- VAL_FLUCTUATING (and OVERFITTING, which takes precedence) ------------------------------------
def check_validation(ctx: Context) -> None:
    if ctx.val is None:
        ctx.skip("no val_loss column: validation fluctuation and overfitting not checked")
        return
    ok = np.isfinite(ctx.val)
    if ok.sum() < 4:
        ctx.skip(f"only {int(ok.sum())} finite validation losses: fluctuation and overfitting need at least 4 "
                 f"{ctx.u.nouns}")
        return
    val = np.where(ok, ctx.val, np.nan)
    i_best = int(np.nanargmin(val))
    overfit = _overfitting(ctx)
    ctx.add(overfit)
    if len(val) - 1 - i_best >= MIN_STALL_EPOCHS and overfit is None:
        ctx.add(_val_fluctuating(ctx, val, i_best))


def _after_best(ctx: Context, val: np.ndarray, i_best: int) -> dict[str, Any]:
    """How the validation loss moved after its best: rises, falls, swing, trend and scatter."""
    window = val[i_best:]
    finite = window[np.isfinite(window)]
    diffs = np.diff(finite)
    x = np.arange(len(window), dtype=float)[np.isfinite(window)]
    slope, intercept = np.polyfit(x, finite, 1)
    return {
        "best": float(val[i_best]),
        "best_epoch": ctx.epochs[i_best],
        "epochs_since_best": len(val) - 1 - i_best,
        "rises_after_best": [ctx.epochs[i_best + 1 + i] for i, d in enumerate(diffs) if d > 0],
        "falls_after_best": [ctx.epochs[i_best + 1 + i] for i, d in enumerate(diffs) if d < 0],
        "swing": float(np.nanmax(window) - np.nanmin(window)),
        "total_improvement": float(val[0] - val[i_best]) if math.isfinite(val[0]) else float("nan"),
        "trend_per_epoch": float(slope),
        "residual_std": float(np.std(finite - (slope * x + intercept))),
        "last_vs_best": float(val[-1] / val[i_best] - 1) if val[i_best] != 0 else float("nan"),
        "min_stall_epochs": MIN_STALL_EPOCHS,
    }


def _some(ctx: Context, points: list) -> str:
    """``"epoch(s) 2 and 4"`` (``"epoch(s) none"``), or the same in evaluations."""
    if points:
        return ctx.u.some(points)
    return "epoch(s) none" if ctx.u.whole_epochs else "no evaluation"


def _val_text(ctx: Context, ev: dict[str, Any]) -> list[str]:
    swing, gain, u = ev["swing"], ev["total_improvement"], ctx.u
    text = [
        f"Validation loss by {u.noun}: {join(ctx.val, num)}.",
        f"Best {num(ev['best'])} at {u.at(ev['best_epoch'])}; {ev['epochs_since_best']} {u.nouns} since then "
        "without a new best.",
        f"After the best it rose in {_some(ctx, ev['rises_after_best'])} and fell "
        f"in {_some(ctx, ev['falls_after_best'])}; swing {num(swing)}"
        + (f" = {swing / gain:.0%} of the total improvement {num(gain)}" if gain > 0 else "") + ".",
        f"Trend since the best {ev['trend_per_epoch']:+.3g} per {u.noun}, scatter around it (std of residuals) "
        f"{num(ev['residual_std'])}; last {u.noun} {ev['last_vs_best']:+.2%} from the best.",
    ]
    if ctx.train is not None:
        t = ctx.train[np.isfinite(ctx.train)]
        if len(t) >= 2:
            text.append(f"Training loss {num(t[0])} → {num(t[-1])}: "
                        + ("still falling." if t[-1] < t[0] else "not falling."))
    return text


def _movement(ctx: Context, ev: dict[str, Any]) -> tuple[str, str]:
    """(title, clause) for how the validation loss moved after its best, from its rises and falls."""
    rises, falls, u = ev["rises_after_best"], ev["falls_after_best"], ctx.u
    if rises and falls:
        return ("Validation loss fluctuating",
                f"moved up and down since (rose in {_some(ctx, rises)}, fell in {_some(ctx, falls)})")
    if rises:
        return ("Validation loss rising past its best",
                f"rose in every {u.noun} since ({ev['last_vs_best']:+.1%} by the last)")
    if falls:
        return ("Validation loss stalled above its best",
                f"fell back toward it without beating it ({ev['last_vs_best']:+.1%} at the last {u.noun})")
    return "Validation loss stalled", "stayed flat"


def _val_suggestion(ctx: Context):
    p = ctx.s.patience
    patience = (lower_patience(ctx, f"Or let the scheduler cut it sooner (patience {p - 1} instead of {p}).", p - 1)
                if measures.uses_plateau(ctx.s) and p > 0 else None)
    return compose(
        lower_lr(ctx),
        patience,
        larger_batch(ctx, "If that is not enough, a larger batch"),
        more_accumulation(ctx),
        "Keep the best checkpoint, not the last.",
    )


def _val_fluctuating(ctx: Context, val: np.ndarray, i_best: int) -> Finding:
    ev = _after_best(ctx, val, i_best)
    rises, falls = ev["rises_after_best"], ev["falls_after_best"]
    if falls and rises:
        explanation = ("Ups and downs around a flat trend are noise, not overfitting (which shows as a steady rise in "
                       "validation loss while the training loss keeps falling). Noise this size usually comes from "
                       "steps too large for the current curvature (a high LR, with clipping setting the step size), "
                       "from small batches, or from a small validation set.")
    else:
        way = "up" if rises else "down, without reaching it" if falls else "nowhere"
        explanation = (f"The validation loss has moved only one way since its best ({way}), so this is a stall "
                       "or a drift rather than noise; "
                       + ("with the training loss also not falling it points to the optimizer, not overfitting."
                          if ctx.train is not None else "without a training loss it cannot be told from overfitting."))
    title, moved = _movement(ctx, ev)
    suggestion, changes = _val_suggestion(ctx)
    return Finding(
        code=VAL_FLUCTUATING,
        severity="warning",
        title=title,
        problem=f"The validation loss has not improved on its best ({num(ev['best'])}, {ctx.u.at(ev['best_epoch'])}) "
        f"for {ev['epochs_since_best']} {ctx.u.nouns}, and {moved}.",
        evidence=ev,
        evidence_text=_val_text(ctx, ev),
        explanation=explanation,
        suggestion=suggestion,
        changes=changes,
        rationale="Smaller or less noisy steps let the model settle into the basin it has found instead of "
        "bouncing across it.",
        monitor=f"New best validation losses in most {ctx.u.nouns}, and a shrinking {ctx.u.noun}-to-{ctx.u.noun} "
        "swing.",
    )


# -- OVERFITTING -------------------------------------------------------------------------------
def _overfitting(ctx: Context) -> Finding | None:
    """Over the last ``OVERFIT_WINDOW`` epochs the training loss trends down (and ends below its window
    start) while the validation loss trends up (and ends above both its window start and its best)."""
    if ctx.train is None:
        ctx.skip("no train_loss column: overfitting and training-loss plateau not checked")
        return None
    k = min(OVERFIT_WINDOW, ctx.data.n_epochs)
    t, v = ctx.train[-k:], ctx.val[-k:]
    if k < 3 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        return None
    x = np.arange(k, dtype=float)
    t_slope, v_slope = float(np.polyfit(x, t, 1)[0]), float(np.polyfit(x, v, 1)[0])
    best = float(np.nanmin(ctx.val))
    if not (t_slope < 0 < v_slope and t[-1] < t[0] and v[-1] > v[0] and v[-1] > best):
        return None  # the problem says the training loss fell and the validation loss rose: both must hold
    e0, e1, u = ctx.epochs[-k], ctx.epochs[-1], ctx.u
    gap0, gap1 = float(v[0] - t[0]), float(v[-1] - t[-1])
    over = f"epochs {e0}-{e1}" if u.whole_epochs else u.span(ctx.epochs[-k:])
    wd = config_value(ctx, "weight_decay")
    suggestion, changes = compose(
        "Keep the best checkpoint (early stopping).",
        Change("weight_decay", "higher", None, "Add regularization: weight decay"
               + (f" (this run used {sci(wd)})" if isinstance(wd, (int, float)) else "") + " or dropout."),
        "Or use a smaller model or more data.",
    )
    return Finding(
        code=OVERFITTING,
        severity="warning",
        title="Overfitting",
        problem=f"Over {over} the training loss fell ({num(t[0])} → {num(t[-1])}) while the "
        f"validation loss rose ({num(v[0])} → {num(v[-1])}).",
        evidence={"window_epochs": [e0, e1], "train_slope": t_slope, "val_slope": v_slope,
                  "gap_start": gap0, "gap_end": gap1, "best_val": best},
        evidence_text=[
            f"Train loss trend {t_slope:+.3g}/{u.noun}, validation trend {v_slope:+.3g}/{u.noun} over the last {k} "
            f"{u.nouns}.",
            f"Validation minus training loss grew from {num(gap0)} to {num(gap1)}.",
        ],
        explanation="A steady opposite trend (not up-and-down noise) means the model is fitting the training "
        "set at the expense of what generalizes: too little data for the model size, or too many epochs.",
        suggestion=suggestion,
        changes=changes,
        rationale="Noise fixes (lower LR, larger batch) do not cure overfitting; capacity and data do.",
        monitor="The gap between validation and training loss staying flat.",
    )


# -- TRAIN_LOSS_PLATEAU --------------------------------------------------------------------------
def check_train_plateau(ctx: Context) -> None:
    t = ctx.train
    if t is None:
        ctx.skip("no train_loss column: overfitting and training-loss plateau not checked")
        return
    if len(t) < PLATEAU_WINDOW + 1 or not np.all(np.isfinite(t)):
        ctx.skip(f"fewer than {PLATEAU_WINDOW + 1} finite training losses: training-loss plateau not checked")
        return
    before, recent, gain = recent_improvement(t)
    if gain >= PLATEAU_MIN_IMPROVEMENT:
        return
    cuts, u = ctx.cut_epochs(), ctx.u
    lr_note = "" if cuts is None else (f" The LR was last cut at {u.at(cuts[-1])}." if cuts else " The LR was never cut.")
    a, b = ctx.epochs[-PLATEAU_WINDOW], ctx.epochs[-1]
    window = f"{u.unit}s {u.number(a)}-{u.number(b)}" if u.unit == "step" else f"{u.number(a)}-{u.number(b)}"
    moved = f"improved by {gain:.2%}" if gain > 0 else ("did not improve" if gain == 0 else f"got worse by {-gain:.2%}")
    suggestion, changes = _plateau_suggestion(ctx, cuts)
    ctx.add(Finding(
        code=TRAIN_LOSS_PLATEAU,
        severity="warning",
        title="Training loss plateau",
        problem=f"The training loss {moved} in the last {PLATEAU_WINDOW} {u.nouns} ({window}) against its best "
        f"before them, under the {PLATEAU_MIN_IMPROVEMENT:.0%} that counts as progress.",
        evidence={"best_before_window": before, "best_in_window": recent, "relative_improvement": gain,
                  "window": PLATEAU_WINDOW, "min_improvement": PLATEAU_MIN_IMPROVEMENT},
        evidence_text=[f"Training loss by {u.noun}: {join(t, num)}.{lr_note}"],
        explanation="When even the training loss stops falling, the optimizer is stuck: steps too large to "
        "descend further (bouncing across a valley, often with heavy clipping), too small to make progress, "
        "or the model has reached its capacity on this data.",
        suggestion=suggestion,
        changes=changes,
        rationale="Which fix applies depends on the step size relative to the landscape; the gradient and "
        "clipping findings tell which side the run is on.",
        monitor=f"The training loss falling by more than 1% per few {u.nouns}.",
    ))


def _plateau_suggestion(ctx: Context, cuts: list | None):
    """The fix the run's own numbers point to: heavy clipping -> a lower LR; LR cuts -> warm restarts."""
    share = clip_share(ctx)
    if share.heavy_overall or share.heavy_last:
        clipped = percent(share.overall if share.heavy_overall else share.last)
        where = "of the steps" if share.heavy_overall else f"of the last {ctx.u.noun}'s steps"
        return compose(lower_lr(ctx, f"{clipped} {where} were clipped, so the steps are too large: lower the "
                                     "learning rate"))
    if cuts:
        lr = ctx.observed_lr[-1] if ctx.observed_lr is not None else None
        now = f" to {sci(lr)}" if lr is not None else ""
        return compose(Change("scheduler", "to", "cosine_warm_restarts",
                              f"The LR was cut{now}: raise it again, or restart it periodically with warm restarts "
                              "(scheduler cosine_warm_restarts)."))
    return compose("Neither heavy clipping nor an LR cut explains it: consider a larger model, or better-scaled "
                   "inputs and targets.")


__all__ = ["OVERFIT_WINDOW", "PLATEAU_MIN_IMPROVEMENT", "PLATEAU_WINDOW", "check_train_plateau", "check_validation",
           "recent_improvement"]

"""The losses: VAL_FLUCTUATING, OVERFITTING, TRAIN_LOSS_PLATEAU.

``recent_improvement`` (the training-loss plateau rule) is shared with the expectation
``train_loss_decreasing``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..findings import OVERFITTING, TRAIN_LOSS_PLATEAU, VAL_FLUCTUATING, Finding
from ..formatting import join, num
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


def _val_fluctuating(ctx: Context, val: np.ndarray, i_best: int) -> Finding:
    ev = _after_best(ctx, val, i_best)
    rises, falls = ev["rises_after_best"], ev["falls_after_best"]
    if falls and rises:
        explanation = ("Ups and downs around a flat trend are noise, not overfitting (which shows as a steady rise in "
                       "validation loss while the training loss keeps falling). Noise this size usually comes from "
                       "steps too large for the current curvature (a high LR, with clipping setting the step size), "
                       "from small batches, or from a small validation set.")
    else:
        explanation = ("The validation loss has moved only one way since its best "
                       f"({'up' if rises else 'nowhere'}), so this is a stall or a drift rather than noise; "
                       + ("with the training loss also not falling it points to the optimizer, not overfitting."
                          if ctx.train is not None else "without a training loss it cannot be told from overfitting."))
    return Finding(
        code=VAL_FLUCTUATING,
        severity="warning",
        title="Validation loss fluctuating",
        problem=f"The validation loss has not improved on its best ({num(ev['best'])}, {ctx.u.at(ev['best_epoch'])}) "
        f"for {ev['epochs_since_best']} {ctx.u.nouns} and moves up and down instead of trending.",
        evidence=ev,
        evidence_text=_val_text(ctx, ev),
        explanation=explanation,
        suggestion="Lower the LR or let the scheduler cut it sooner (shorter patience); if that is not enough, a "
        "larger batch or gradient accumulation lowers the gradient noise. Keep the best checkpoint, not the last.",
        rationale="Smaller or less noisy steps let the model settle into the basin it has found instead of "
        "bouncing across it.",
        monitor=f"New best validation losses in most {ctx.u.nouns}, and a shrinking {ctx.u.noun}-to-{ctx.u.noun} "
        "swing.",
    )


# -- OVERFITTING -------------------------------------------------------------------------------
def _overfitting(ctx: Context) -> Finding | None:
    """Over the last ``OVERFIT_WINDOW`` epochs the training loss trends down while the validation loss
    trends up (and ends above both its window start and its best)."""
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
    if not (t_slope < 0 < v_slope and v[-1] > v[0] and v[-1] > best):
        return None
    e0, e1, u = ctx.epochs[-k], ctx.epochs[-1], ctx.u
    gap0, gap1 = float(v[0] - t[0]), float(v[-1] - t[-1])
    over = f"epochs {e0}-{e1}" if u.whole_epochs else u.span(ctx.epochs[-k:])
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
        suggestion="Keep the best checkpoint (early stopping); add data or regularization (weight decay, "
        "dropout) or use a smaller model.",
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
    ctx.add(Finding(
        code=TRAIN_LOSS_PLATEAU,
        severity="warning",
        title="Training loss plateau",
        problem=f"The training loss improved by {gain:.2%} in the last {PLATEAU_WINDOW} {u.nouns} "
        f"({window}), under the {PLATEAU_MIN_IMPROVEMENT:.0%} that counts as "
        "progress.",
        evidence={"best_before_window": before, "best_in_window": recent, "relative_improvement": gain,
                  "window": PLATEAU_WINDOW, "min_improvement": PLATEAU_MIN_IMPROVEMENT},
        evidence_text=[f"Training loss by {u.noun}: {join(t, num)}.{lr_note}"],
        explanation="When even the training loss stops falling, the optimizer is stuck: steps too large to "
        "descend further (bouncing across a valley, often with heavy clipping), too small to make progress, "
        "or the model has reached its capacity on this data.",
        suggestion="If gradients are large or heavily clipped, lower the LR; if the LR has already been cut "
        "to a tiny value, raise it or restart with warm restarts; otherwise consider a larger model or "
        "better-scaled inputs and targets.",
        rationale="Which fix applies depends on the step size relative to the landscape; the gradient and "
        "clipping findings tell which side the run is on.",
        monitor=f"The training loss falling by more than 1% per few {u.nouns}.",
    ))


__all__ = ["OVERFIT_WINDOW", "PLATEAU_MIN_IMPROVEMENT", "PLATEAU_WINDOW", "check_train_plateau", "check_validation",
           "recent_improvement"]

"""The write-up's expected improvements: one run against a baseline run (rules: ``expectations``).

Every comparison uses the epochs both runs have (``RunData.upto`` the last common epoch).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import measures
from .formatting import num, percent
from .run_data import RunData
from .settings import Settings
from .verdicts import HELD, NOT_CHECKED, NOT_ENOUGH_EPOCHS, NOT_HELD, Verdict


def _common_epochs(run: RunData, base: RunData) -> int:
    return min(run.n_epochs, base.n_epochs)


def _last_common(run: RunData, base: RunData) -> int | None:
    n = _common_epochs(run, base)
    return min(run.epoch_numbers[n - 1], base.epoch_numbers[n - 1]) if n else None


def _late_growth(run: RunData, base: RunData) -> tuple[measures.Growth, measures.Growth] | None:
    """``RunData.growth`` of both runs over their common epochs, for the first statistic both have,
    from the same source (from the epoch rows of both when only one run has step norms)."""
    last = _last_common(run, base)
    a_data, b_data = run.upto(last), base.upto(last)
    for stat in measures.GROWTH_STATS:
        a, b = a_data.growth(stat), b_data.growth(stat)
        if a is not None and b is not None and a.source != b.source:
            a = dataclasses.replace(a_data, steps=None).growth(stat)
            b = dataclasses.replace(b_data, steps=None).growth(stat)
        if a is not None and b is not None:
            return a, b
    return None


def more_stable(run: RunData, base: RunData) -> Verdict:
    """The late-window pre-clip norm (``Growth.late`` over the common epochs) is lower than the baseline's."""
    name, claim = "more_stable_gradients", "More stable gradients than the baseline (lower late-epoch norms)"
    n = _common_epochs(run, base)
    if n < 2:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {}, "the runs share fewer than 2 epochs")
    pair = _late_growth(run, base)
    if pair is None:
        return Verdict(name, claim, NOT_CHECKED, {},
                       "both runs need the same per-epoch grad-norm statistic (or step grad_norm)")
    a, b = pair
    ev = {"statistic": f"grad_norm_{a.stat}", "epochs_compared": list(a.late_epochs), "source": a.source,
          "run": a.late, "baseline": b.late}
    return Verdict(name, claim, HELD if a.late < b.late else NOT_HELD, ev,
                   f"{a.stat} pre-clip norm over epochs {a.late_epochs[0]}-{a.late_epochs[-1]}, the late third of "
                   f"the {n} common epochs ({a.source}): {num(a.late)} vs baseline {num(b.late)}; held when lower.")


def less_clipping(run: RunData, base: RunData, s: Settings) -> Verdict:
    """The share of steps clipped (``RunData.clip_fraction`` over the common epochs) is lower than the baseline's."""
    name, claim = "less_frequent_clipping", "Less frequent clipping than the baseline"
    last = _last_common(run, base)
    a, src_a = run.clip_fraction(last)
    b, src_b = base.clip_fraction(last)
    if a is None or b is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "both runs need step 'clipped' flags or a clip_fraction column")
    return Verdict(name, claim, HELD if a < b else NOT_HELD,
                   {"run": a, "baseline": b, "through_epoch": last, "run_source": src_a, "baseline_source": src_b},
                   f"{percent(a)} of steps clipped vs baseline {percent(b)} (epochs up to {last}; thresholds may "
                   f"differ: the run clips at {num(s.grad_clip)}); held when lower.")


def _cut_lag(data: RunData, initial_lr: float | None) -> tuple[int | None, int | None]:
    """(first cut epoch, epochs from the best val loss before it to the cut)."""
    cuts, val = data.cut_epochs(initial_lr), data.col("val_loss")
    if not cuts or val is None:
        return None, None
    i_cut = data.epoch_numbers.index(cuts[0])
    i_best = int(np.nanargmin(val[: i_cut + 1])) if np.isfinite(val[: i_cut + 1]).any() else 0
    return cuts[0], i_cut - i_best


def faster_lr(run: RunData, base: RunData, s: Settings, base_s: Settings) -> Verdict:
    """The first LR cut comes fewer epochs after the best validation loss than in the baseline."""
    name, claim = "faster_lr_adaptation", "Faster LR adaptation than the baseline"
    for d in (run, base):
        if d.col("lr") is None or d.col("val_loss") is None:
            return Verdict(name, claim, NOT_CHECKED, {}, "both runs need lr and val_loss columns")
    cut_a, lag_a = _cut_lag(run, s.lr)
    cut_b, lag_b = _cut_lag(base, base_s.lr)
    ev = {"run_first_cut": cut_a, "run_lag": lag_a, "baseline_first_cut": cut_b, "baseline_lag": lag_b}
    if cut_a is None and cut_b is None:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, ev, "neither run has cut its LR yet.")
    if cut_a is None:
        return Verdict(name, claim, NOT_HELD, ev, f"the baseline cut its LR after epoch {cut_b}; this run never did.")
    if cut_b is None:
        return Verdict(name, claim, HELD, ev,
                       f"this run cut its LR after epoch {cut_a}, {lag_a} epoch(s) after its best; the baseline never did.")
    return Verdict(name, claim, HELD if lag_a < lag_b else NOT_HELD, ev,
                   f"first cut {lag_a} epoch(s) after the best val loss (epoch {cut_a}) vs baseline {lag_b} "
                   f"(epoch {cut_b}); held when sooner.")


def better_val(run: RunData, base: RunData) -> Verdict:
    """The best validation loss over the common epochs is lower than the baseline's."""
    name, claim = "better_validation_loss", "Better (lower) best validation loss than the baseline"
    a, b = run.col("val_loss"), base.col("val_loss")
    if a is None or b is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "both runs need a val_loss column")
    n = _common_epochs(run, base)
    if n < 1 or not np.isfinite(a[:n]).any() or not np.isfinite(b[:n]).any():
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {}, "no finite validation loss in the common epochs")
    best_a, best_b = float(np.nanmin(a[:n])), float(np.nanmin(b[:n]))
    ev = {"run": best_a, "baseline": best_b, "common_epochs": n,
          "run_all_epochs": float(np.nanmin(a)), "baseline_all_epochs": float(np.nanmin(b))}
    return Verdict(name, claim, HELD if best_a < best_b else NOT_HELD, ev,
                   f"best over the {n} common epochs {num(best_a)} vs baseline {num(best_b)}; held when lower.")


def compare_with_baseline(run: RunData, base: RunData, s: Settings, base_s: Settings) -> list[Verdict]:
    """The four expected improvements, in the write-up's order."""
    return [more_stable(run, base), less_clipping(run, base, s), faster_lr(run, base, s, base_s),
            better_val(run, base)]


__all__ = ["compare_with_baseline"]

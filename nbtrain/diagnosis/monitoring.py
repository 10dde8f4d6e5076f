"""The write-up's monitoring points, as verdicts on one run (rules: ``expectations``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import measures
from .checks.losses import PLATEAU_MIN_IMPROVEMENT, PLATEAU_WINDOW, recent_improvement
from .formatting import num
from .plateau import plateau_state
from .run_data import RunData
from .settings import Settings
from .verdicts import HELD, NOT_CHECKED, NOT_ENOUGH_EPOCHS, NOT_HELD, Verdict

MOSTLY_BELOW = 0.9  # share of steps at or below the clip threshold for "mostly below"
MAX_OCCASIONAL_NORM = 6.0  # "occasional clips up to 5-6"
CONSISTENT_SHARE = 0.75  # share of epochs that must set a new best / go down
MIN_TREND_EPOCHS = 3


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def grad_norms_below_clip(data: RunData, s: Settings) -> Verdict:
    """At least ``MOSTLY_BELOW`` of the steps have a pre-clip norm <= ``grad_clip``."""
    name, clip = "grad_norms_below_clip", s.grad_clip
    claim = f"Gradient norms mostly stay below the clip threshold ({num(clip)})"
    rule = f"held when at least {MOSTLY_BELOW:.0%} of steps have a pre-clip norm <= {num(clip)}"
    if clip is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "clipping is off or the threshold is unknown (pass the config)")
    g = data.col("grad_norm", "step")
    frac, source = data.clip_fraction()
    if g is not None or frac is not None:
        share = float(np.mean(g <= clip)) if g is not None else 1.0 - frac
        ev = {"share_below": share, "required": MOSTLY_BELOW, "grad_clip": clip,
              "source": "step rows" if g is not None else source}
        if g is not None:
            ev["steps"] = len(g)
        what = f"of {len(g)} steps had a norm <= {num(clip)}" if g is not None else f"of steps were not clipped ({source})"
        return Verdict(name, claim, HELD if share >= MOSTLY_BELOW else NOT_HELD, ev, f"{share:.1%} {what}; {rule}.")
    return _below_clip_from_percentiles(data, name, claim, clip, rule)


def _below_clip_from_percentiles(data: RunData, name: str, claim: str, clip: float, rule: str) -> Verdict:
    """Epoch rows only: every epoch's p90 at or below the threshold; or a median above it (not held)."""
    epochs, p90, p50 = data.epoch_numbers, data.col("grad_norm_p90"), data.col("grad_norm_p50")
    if p90 is not None:
        over = [e for e, v in zip(epochs, p90) if not v <= clip]
        return Verdict(name, claim, NOT_HELD if over else HELD,
                       {"grad_norm_p90": list(p90), "grad_clip": clip, "epochs_p90_above": over,
                        "source": "grad_norm_p90"},
                       f"per-epoch 90th percentile {'above' if over else 'at or below'} {num(clip)}"
                       + (f" in epoch(s) {over}" if over else " in every epoch") + f"; {rule}.")
    over = [] if p50 is None else [e for e, v in zip(epochs, p50) if v > clip]
    if over:
        return Verdict(name, claim, NOT_HELD, {"grad_norm_p50": list(p50), "grad_clip": clip,
                                               "epochs_p50_above": over, "source": "grad_norm_p50"},
                       f"the median norm exceeded {num(clip)} in epoch(s) {over}, so over half of those steps were "
                       f"clipped; {rule}.")
    return Verdict(name, claim, NOT_CHECKED, {"grad_clip": clip},
                   "needs step grad_norm, clip_fraction or grad_norm_p90 (a median alone cannot show 90%)")


def occasional_clips(data: RunData, s: Settings) -> Verdict:
    """The largest pre-clip norm of the run (``RunData.largest_norm``) is <= ``MAX_OCCASIONAL_NORM``."""
    name = "occasional_clips_up_to_6"
    claim = f"Occasional clips reach norms of 5-6 at most (largest pre-clip norm <= {MAX_OCCASIONAL_NORM:g})"
    largest, src = data.largest_norm()
    if largest is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs step grad_norm or grad_norm_max")
    status = HELD if largest <= MAX_OCCASIONAL_NORM else NOT_HELD
    return Verdict(name, claim, status, {"largest_norm": largest, "limit": MAX_OCCASIONAL_NORM, "source": src},
                   f"largest pre-clip norm {num(largest)} ({src}); held when <= {MAX_OCCASIONAL_NORM:g}.")


def lr_cut_after_patience(data: RunData, s: Settings) -> Verdict:
    """The logged cuts (``RunData.cut_epochs``) are exactly torch's cuts on this validation curve."""
    name, p = "lr_cut_after_patience", s.patience
    claim = f"The LR drops after {p} epoch{'' if p == 1 else 's'} without validation improvement"
    if not measures.uses_plateau(s):
        return Verdict(name, claim, NOT_CHECKED, {"scheduler": s.scheduler}, "the scheduler is not ReduceLROnPlateau")
    val, observed = data.col("val_loss"), data.cut_epochs(s.lr)
    if val is None or observed is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs val_loss and lr columns")
    st = plateau_state(val, s.lr or 1.0, **s.plateau_kwargs())
    epochs = data.epoch_numbers
    expected = [epochs[e] for e, _, _ in st.cuts]
    evidence = {"expected_cut_epochs": expected, "observed_cut_epochs": observed, "patience": p,
                "threshold": s.threshold, "best": st.best,
                "best_epoch": None if st.best_epoch is None else epochs[st.best_epoch],
                "num_bad_epochs": st.num_bad_epochs, "next_cut_epoch": st.next_cut_epoch}
    how = (f"torch cuts on the {_ordinal(p + 1)} epoch in a row that does not beat best × (1 − {s.threshold:g}), "
           f"i.e. after {p} tolerated epoch{'' if p == 1 else 's'}")
    if not expected and not observed:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, evidence,
                       f"the validation loss never went {p + 1} epochs without beating its best, so no cut was due "
                       f"({how}); if nothing improves the first cut comes at the end of epoch {st.next_cut_epoch}.")
    return Verdict(name, claim, HELD if expected == observed else NOT_HELD, evidence,
                   f"logged cuts after epoch(s) {observed or 'none'}, expected after {expected or 'none'} ({how}).")


def _trend_input(data: RunData, column: str, name: str, claim: str, needs: str) -> np.ndarray | Verdict:
    """The column a trend claim reads, or the verdict when it is missing or too short."""
    values = data.col(column)
    if values is None:
        return Verdict(name, claim, NOT_CHECKED, {}, needs)
    if len(values) < MIN_TREND_EPOCHS:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {"epochs": len(values), "needed": MIN_TREND_EPOCHS},
                       f"{len(values)} epoch(s); the trend needs {MIN_TREND_EPOCHS}.")
    return values


def val_improving(data: RunData, s: Settings) -> Verdict:
    """At least ``CONSISTENT_SHARE`` of the epochs after the first set a new best validation loss."""
    name, claim = "val_improving_consistently", "Validation loss improves consistently (not just fluctuation)"
    val = _trend_input(data, "val_loss", name, claim, "needs a val_loss column")
    if isinstance(val, Verdict):
        return val
    epochs = data.epoch_numbers
    new_best = [epochs[i] for i in range(1, len(val)) if val[i] < np.min(val[:i])]
    share = len(new_best) / (len(val) - 1)
    status = HELD if share >= CONSISTENT_SHARE else NOT_HELD
    return Verdict(name, claim, status, {"new_best_epochs": new_best, "share": share, "required": CONSISTENT_SHARE,
                                         "best": min(measures.finite(val.tolist()), default=float("nan"))},
                   f"{len(new_best)} of {len(val) - 1} epochs after the first set a new best ({share:.0%}); held at "
                   f">= {CONSISTENT_SHARE:.0%}.")


def train_decreasing(data: RunData, s: Settings) -> Verdict:
    """The training loss fell in most epoch steps, ends lower, and is not on a plateau (``recent_improvement``)."""
    name, claim = "train_loss_decreasing", "Training loss decreases steadily, without a plateau"
    t = _trend_input(data, "train_loss", name, claim, "needs a train_loss column (or step losses)")
    if isinstance(t, Verdict):
        return t
    with np.errstate(invalid="ignore"):  # inf - inf: not a fall
        down = np.diff(t) < 0
    share = float(np.mean(down))
    evidence: dict[str, Any] = {"share_decreasing": share, "required": CONSISTENT_SHARE,
                                "first": float(t[0]), "last": float(t[-1])}
    ok = share >= CONSISTENT_SHARE and t[-1] < t[0]
    detail = (f"fell in {int(down.sum())} of {len(down)} epoch steps ({share:.0%}, needs >= {CONSISTENT_SHARE:.0%}), "
              f"{num(t[0])} → {num(t[-1])}")
    if len(t) > PLATEAU_WINDOW:
        gain = recent_improvement(t)[2]
        evidence.update({"recent_improvement": gain, "min_recent_improvement": PLATEAU_MIN_IMPROVEMENT})
        ok = ok and gain >= PLATEAU_MIN_IMPROVEMENT
        detail += f"; last {PLATEAU_WINDOW} epochs improved {gain:.2%} (needs >= {PLATEAU_MIN_IMPROVEMENT:.0%})"
    return Verdict(name, claim, HELD if ok else NOT_HELD, evidence, detail + ".")


MONITORING_POINTS = (grad_norms_below_clip, occasional_clips, lr_cut_after_patience, val_improving, train_decreasing)

__all__ = ["MONITORING_POINTS"]

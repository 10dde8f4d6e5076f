"""Did the fixes do what the write-up expected? One verdict per claim, with its numbers.

``check_expectations(history, config, baseline=None)`` turns the write-up's "Monitoring
Points" and "Expected Improvements" into :class:`Verdict` s. Each has a status:

- ``"held"``: the numbers meet the stated rule;
- ``"not held"``: they do not;
- ``"not enough epochs"``: the run is too short for the claim to be tested yet;
- ``"not checked"``: the log lacks the columns (or the config the setting) it needs.

No claim is ever held by default: every verdict carries the measured numbers and the
threshold it was judged against. The rules:

grad_norms_below_clip
    "Gradient norms should mostly stay below the clip threshold": at least 90%
    (``MOSTLY_BELOW``) of optimizer steps have a pre-clip norm <= ``grad_clip``. That is the
    Tuning Playbook's default (threshold near the 90th percentile of the norms). From step
    rows when present, else the n_steps-weighted clip_fraction, else per-epoch
    grad_norm_p90 <= grad_clip in every epoch.
occasional_clips_up_to_6
    "Occasional clips up to 5-6": the largest pre-clip norm of the run is <= 6.0.
lr_cut_after_patience
    "LR drops after `patience` epochs without improvement": the logged LR cuts happen at
    exactly the epochs where torch's ReduceLROnPlateau cuts on this validation curve (the
    (patience+1)-th epoch without beating best * (1 - threshold)). "not enough epochs" when
    the validation loss never stalled that long.
val_improving_consistently
    at least 75% of the epochs after the first set a new best validation loss.
train_loss_decreasing
    the training loss fell in at least 75% of epoch-to-epoch steps, ends below where it
    started, and (with 4+ epochs) improved by at least 1% over its previous best in the
    last 3 epochs (not a plateau).

With a ``baseline`` (e.g. the round-1 History), over the epochs both runs have:

more_stable_gradients
    the late-epoch (last third) median pre-clip norm is lower than the baseline's.
less_frequent_clipping
    the share of clipped steps is lower than the baseline's.
faster_lr_adaptation
    the LR is first cut fewer epochs after the best validation loss before it than in the
    baseline (or the run cut and the baseline did not).
better_validation_loss
    the best validation loss is lower than the baseline's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..files import to_json_safe, to_python
from .diagnostics import PLATEAU_MIN_IMPROVEMENT, PLATEAU_WINDOW
from .formatting import _num
from .run_data import RunData, as_run_data
from .settings import Settings, resolve_settings
from .plateau import plateau_state

HELD = "held"
NOT_HELD = "not held"
NOT_ENOUGH_EPOCHS = "not enough epochs"
NOT_CHECKED = "not checked"
STATUSES = (HELD, NOT_HELD, NOT_ENOUGH_EPOCHS, NOT_CHECKED)

MOSTLY_BELOW = 0.9  # share of steps at or below the clip threshold for "mostly below"
MAX_OCCASIONAL_NORM = 6.0  # "occasional clips up to 5-6"
CONSISTENT_SHARE = 0.75  # share of epochs that must set a new best / go down
MIN_TREND_EPOCHS = 3


@dataclass
class Verdict:
    """One expectation and what the log says about it."""

    name: str  # stable identifier, e.g. "grad_norms_below_clip"
    claim: str  # the expectation, in the write-up's words
    status: str  # one of STATUSES
    evidence: dict = field(default_factory=dict)  # measured numbers and thresholds
    detail: str = ""  # one or two sentences: the rule and the outcome

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        self.evidence = to_python(self.evidence)

    @property
    def held(self) -> bool:
        return self.status == HELD

    def to_dict(self) -> dict:
        return {"name": self.name, "claim": self.claim, "status": self.status,
                "evidence": to_json_safe(self.evidence), "detail": self.detail}


class Expectations(list):
    """A list of Verdicts with table views."""

    def get(self, name: str) -> Verdict | None:
        return next((v for v in self if v.name == name), None)

    def counts(self) -> dict[str, int]:
        return {s: sum(v.status == s for v in self) for s in STATUSES}

    def to_dicts(self) -> list[dict]:
        return [v.to_dict() for v in self]

    def to_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_dicts(), columns=["name", "claim", "status", "evidence", "detail"])

    def to_markdown(self) -> str:
        lines = ["| Expectation | Status | Detail |", "|---|---|---|"]
        for v in self:
            detail = v.detail.replace("|", "\\|")
            lines.append(f"| {v.claim} | **{v.status}** | {detail} |")
        c = self.counts()
        lines += ["", ", ".join(f"{n} {s}" for s, n in c.items() if n)]
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# -- measurements shared by several checks -----------------------------------------------
def _observed_cuts(data: RunData, initial_lr: float | None) -> list[int] | None:
    lr = data.col("lr")
    if lr is None:
        return None
    start = data.col("lr_start")
    prev = start[0] if start is not None and math.isfinite(start[0]) else initial_lr
    cuts, epochs = [], data.epoch_numbers
    for i, value in enumerate(lr):
        if prev is not None and math.isfinite(value) and value < prev * (1 - 1e-9):
            cuts.append(epochs[i])
        prev = value if math.isfinite(value) else prev
    return cuts


def _clip_fraction(data: RunData, upto_epoch: int | None = None) -> tuple[float | None, str]:
    steps = data.steps
    if steps is not None and "clipped" in steps.columns:
        s = steps if upto_epoch is None or "epoch" not in steps.columns else steps[steps["epoch"] <= upto_epoch]
        if len(s):
            return float(s["clipped"].astype(float).mean()), "step rows"
    cf = data.col("clip_fraction")
    if cf is None:
        return None, ""
    keep = np.ones(len(cf), bool) if upto_epoch is None else np.asarray(data.epoch_numbers) <= upto_epoch
    cf = cf[keep]
    ok = np.isfinite(cf)
    if not ok.any():
        return None, ""
    n = data.col("n_steps")
    if n is not None and np.all(np.isfinite(n[keep][ok])) and n[keep][ok].sum() > 0:
        w = n[keep][ok]
        return float(np.sum(cf[ok] * w) / w.sum()), "clip_fraction weighted by n_steps"
    return float(np.mean(cf[ok])), "mean of per-epoch clip_fraction"


def _largest_norm(data: RunData) -> tuple[float | None, str]:
    g = data.col("grad_norm", "step")
    if g is not None and np.isfinite(g).any():
        return float(np.nanmax(np.where(np.isfinite(g), g, np.nan))), "step rows"
    m = data.col("grad_norm_max")
    if m is not None and np.isfinite(m).any():
        return float(np.nanmax(np.where(np.isfinite(m), m, np.nan))), "grad_norm_max"
    return None, ""


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- the claims ------------------------------------------------------------------------
def _grad_norms_below_clip(data: RunData, s: Settings) -> Verdict:
    name = "grad_norms_below_clip"
    clip = s.grad_clip
    claim = f"Gradient norms mostly stay below the clip threshold ({_num(clip)})"
    rule = f"held when at least {MOSTLY_BELOW:.0%} of steps have a pre-clip norm <= {_num(clip)}"
    if clip is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "clipping is off or the threshold is unknown (pass the config)")
    g = data.col("grad_norm", "step")
    if g is not None:
        share = float(np.mean(g <= clip))
        status = HELD if share >= MOSTLY_BELOW else NOT_HELD
        return Verdict(name, claim, status, {"share_below": share, "required": MOSTLY_BELOW, "grad_clip": clip,
                                             "source": "step rows", "steps": len(g)},
                       f"{share:.1%} of {len(g)} steps had a norm <= {_num(clip)}; {rule}.")
    frac, src = _clip_fraction(data)
    if frac is not None:
        share = 1.0 - frac
        status = HELD if share >= MOSTLY_BELOW else NOT_HELD
        return Verdict(name, claim, status, {"share_below": share, "required": MOSTLY_BELOW, "grad_clip": clip,
                                             "source": src},
                       f"{share:.1%} of steps were not clipped ({src}); {rule}.")
    p90 = data.col("grad_norm_p90")
    if p90 is not None:
        over = [e for e, v in zip(data.epoch_numbers, p90) if not v <= clip]
        status = NOT_HELD if over else HELD
        return Verdict(name, claim, status, {"grad_norm_p90": list(p90), "grad_clip": clip, "epochs_p90_above": over,
                                             "source": "grad_norm_p90"},
                       f"per-epoch 90th percentile {'above' if over else 'at or below'} {_num(clip)}"
                       + (f" in epoch(s) {over}" if over else " in every epoch") + f"; {rule}.")
    p50 = data.col("grad_norm_p50")
    if p50 is not None and np.any(p50 > clip):
        over = [e for e, v in zip(data.epoch_numbers, p50) if v > clip]
        return Verdict(name, claim, NOT_HELD, {"grad_norm_p50": list(p50), "grad_clip": clip,
                                               "epochs_p50_above": over, "source": "grad_norm_p50"},
                       f"the median norm exceeded {_num(clip)} in epoch(s) {over}, so over half of those steps were "
                       f"clipped; {rule}.")
    return Verdict(name, claim, NOT_CHECKED, {"grad_clip": clip},
                   "needs step grad_norm, clip_fraction or grad_norm_p90 (a median alone cannot show 90%)")


def _occasional_clips(data: RunData, s: Settings) -> Verdict:
    name = "occasional_clips_up_to_6"
    claim = f"Occasional clips reach norms of 5-6 at most (largest pre-clip norm <= {MAX_OCCASIONAL_NORM:g})"
    largest, src = _largest_norm(data)
    if largest is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs step grad_norm or grad_norm_max")
    status = HELD if largest <= MAX_OCCASIONAL_NORM else NOT_HELD
    return Verdict(name, claim, status, {"largest_norm": largest, "limit": MAX_OCCASIONAL_NORM, "source": src},
                   f"largest pre-clip norm {_num(largest)} ({src}); held when <= {MAX_OCCASIONAL_NORM:g}.")


def _lr_cut(data: RunData, s: Settings) -> Verdict:
    name = "lr_cut_after_patience"
    p = s.patience
    claim = f"The LR drops after {p} epoch{'' if p == 1 else 's'} without validation improvement"
    if s.scheduler != "plateau":
        return Verdict(name, claim, NOT_CHECKED, {"scheduler": s.scheduler}, "the scheduler is not ReduceLROnPlateau")
    val = data.col("val_loss")
    observed = _observed_cuts(data, s.lr)
    if val is None or observed is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs val_loss and lr columns")
    st = plateau_state(val, s.lr or 1.0, p, s.factor, s.threshold, "rel", s.cooldown, s.min_lr)
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
    status = HELD if expected == observed else NOT_HELD
    return Verdict(name, claim, status, evidence,
                   f"logged cuts after epoch(s) {observed or 'none'}, expected after {expected or 'none'} ({how}).")


def _val_improving(data: RunData, s: Settings) -> Verdict:
    name = "val_improving_consistently"
    claim = "Validation loss improves consistently (not just fluctuation)"
    val = data.col("val_loss")
    if val is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs a val_loss column")
    if len(val) < MIN_TREND_EPOCHS:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {"epochs": len(val), "needed": MIN_TREND_EPOCHS},
                       f"{len(val)} epoch(s); the trend needs {MIN_TREND_EPOCHS}.")
    epochs = data.epoch_numbers
    new_best = [epochs[i] for i in range(1, len(val)) if val[i] < np.min(val[:i])]
    share = len(new_best) / (len(val) - 1)
    status = HELD if share >= CONSISTENT_SHARE else NOT_HELD
    return Verdict(name, claim, status, {"new_best_epochs": new_best, "share": share, "required": CONSISTENT_SHARE,
                                         "best": float(np.nanmin(val))},
                   f"{len(new_best)} of {len(val) - 1} epochs after the first set a new best ({share:.0%}); held at "
                   f">= {CONSISTENT_SHARE:.0%}.")


def _train_decreasing(data: RunData, s: Settings) -> Verdict:
    name = "train_loss_decreasing"
    claim = "Training loss decreases steadily, without a plateau"
    t = data.col("train_loss")
    if t is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "needs a train_loss column (or step losses)")
    if len(t) < MIN_TREND_EPOCHS:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {"epochs": len(t), "needed": MIN_TREND_EPOCHS},
                       f"{len(t)} epoch(s); the trend needs {MIN_TREND_EPOCHS}.")
    down = np.diff(t) < 0
    share = float(np.mean(down))
    evidence: dict[str, Any] = {"share_decreasing": share, "required": CONSISTENT_SHARE,
                                "first": float(t[0]), "last": float(t[-1])}
    ok = share >= CONSISTENT_SHARE and t[-1] < t[0]
    detail = (f"fell in {int(down.sum())} of {len(down)} epoch steps ({share:.0%}, needs >= {CONSISTENT_SHARE:.0%}), "
              f"{_num(t[0])} → {_num(t[-1])}")
    if len(t) > PLATEAU_WINDOW:
        before, recent = float(np.min(t[:-PLATEAU_WINDOW])), float(np.min(t[-PLATEAU_WINDOW:]))
        gain = (before - recent) / abs(before) if before else 0.0
        evidence.update({"recent_improvement": gain, "min_recent_improvement": PLATEAU_MIN_IMPROVEMENT})
        ok = ok and gain >= PLATEAU_MIN_IMPROVEMENT
        detail += f"; last {PLATEAU_WINDOW} epochs improved {gain:.2%} (needs >= {PLATEAU_MIN_IMPROVEMENT:.0%})"
    return Verdict(name, claim, HELD if ok else NOT_HELD, evidence, detail + ".")


# -- comparisons with a baseline -----------------------------------------------------------
def _common(run: RunData, base: RunData) -> int:
    return min(run.n_epochs, base.n_epochs)


def _late_norm(data: RunData, n_common: int) -> tuple[float | None, str]:
    late = max(1, n_common // 3)
    for stat in ("grad_norm_p50", "grad_norm_p90", "grad_norm_max"):
        values = data.col(stat)
        if values is not None:
            window = values[n_common - late:n_common]
            window = window[np.isfinite(window)]
            if len(window):
                return float(np.mean(window)), stat
    return None, ""


def _more_stable(run: RunData, base: RunData) -> Verdict:
    name = "more_stable_gradients"
    claim = "More stable gradients than the baseline (lower late-epoch norms)"
    n = _common(run, base)
    if n < 1:
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {}, "one of the runs has no epochs")
    a, stat_a = _late_norm(run, n)
    b, stat_b = _late_norm(base, n)
    if a is None or b is None or stat_a != stat_b:
        return Verdict(name, claim, NOT_CHECKED, {"run_stat": stat_a, "baseline_stat": stat_b},
                       "both runs need the same per-epoch grad-norm statistic (or step grad_norm)")
    late = max(1, n // 3)
    ev = {"statistic": stat_a, "epochs_compared": list(range(n - late, n)), "run": a, "baseline": b}
    return Verdict(name, claim, HELD if a < b else NOT_HELD, ev,
                   f"mean {stat_a} over the last {late} of the {n} common epochs: {_num(a)} vs baseline {_num(b)}; "
                   "held when lower.")


def _less_clipping(run: RunData, base: RunData, s: Settings) -> Verdict:
    name = "less_frequent_clipping"
    claim = "Less frequent clipping than the baseline"
    n = _common(run, base)
    last = min(run.epoch_numbers[n - 1], base.epoch_numbers[n - 1]) if n else None
    a, src_a = _clip_fraction(run, last)
    b, src_b = _clip_fraction(base, last)
    if a is None or b is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "both runs need step 'clipped' flags or a clip_fraction column")
    return Verdict(name, claim, HELD if a < b else NOT_HELD,
                   {"run": a, "baseline": b, "through_epoch": last, "run_source": src_a, "baseline_source": src_b},
                   f"{a:.0%} of steps clipped vs baseline {b:.0%} (epochs up to {last}; thresholds may differ: the run "
                   f"clips at {_num(s.grad_clip)}); held when lower.")


def _cut_lag(data: RunData, initial_lr: float | None) -> tuple[int | None, int | None]:
    """(first cut epoch, epochs from the best val loss before it to the cut)."""
    cuts = _observed_cuts(data, initial_lr)
    val = data.col("val_loss")
    if not cuts or val is None:
        return None, None
    epochs = data.epoch_numbers
    i_cut = epochs.index(cuts[0])
    i_best = int(np.nanargmin(val[: i_cut + 1])) if np.isfinite(val[: i_cut + 1]).any() else 0
    return cuts[0], i_cut - i_best


def _faster_lr(run: RunData, base: RunData, s: Settings, base_s: Settings) -> Verdict:
    name = "faster_lr_adaptation"
    claim = "Faster LR adaptation than the baseline"
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


def _better_val(run: RunData, base: RunData) -> Verdict:
    name = "better_validation_loss"
    claim = "Better (lower) best validation loss than the baseline"
    a, b = run.col("val_loss"), base.col("val_loss")
    if a is None or b is None:
        return Verdict(name, claim, NOT_CHECKED, {}, "both runs need a val_loss column")
    n = _common(run, base)
    if n < 1 or not np.isfinite(a[:n]).any() or not np.isfinite(b[:n]).any():
        return Verdict(name, claim, NOT_ENOUGH_EPOCHS, {}, "no finite validation loss in the common epochs")
    best_a, best_b = float(np.nanmin(a[:n])), float(np.nanmin(b[:n]))
    ev = {"run": best_a, "baseline": best_b, "common_epochs": n,
          "run_all_epochs": float(np.nanmin(a)), "baseline_all_epochs": float(np.nanmin(b))}
    return Verdict(name, claim, HELD if best_a < best_b else NOT_HELD, ev,
                   f"best over the {n} common epochs {_num(best_a)} vs baseline {_num(best_b)}; held when lower.")


def check_expectations(history: Any, config: Any, baseline: Any = None) -> Expectations:
    """Verdicts on the write-up's monitoring points (and, given a baseline run, its
    expected improvements). ``history``/``baseline``: anything ``diagnose`` accepts;
    ``config``: the run's TrainConfig (or dict of its fields, or None to use the
    history's stored config)."""
    data = as_run_data(history)
    settings, _ = resolve_settings(config, data)
    out = Expectations(
        [
            _grad_norms_below_clip(data, settings),
            _occasional_clips(data, settings),
            _lr_cut(data, settings),
            _val_improving(data, settings),
            _train_decreasing(data, settings),
        ]
    )
    if baseline is not None:
        base = as_run_data(baseline)
        base_settings, _ = resolve_settings(None, base)
        out += [
            _more_stable(data, base),
            _less_clipping(data, base, settings),
            _faster_lr(data, base, settings, base_settings),
            _better_val(data, base),
        ]
    return out


__all__ = ["Expectations", "STATUSES", "Verdict", "check_expectations"]

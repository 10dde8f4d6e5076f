"""Did the fixes do what the write-up expected? One verdict per claim, with its numbers.

``check_expectations(history, config, baseline=None)`` turns the write-up's "Monitoring
Points" and "Expected Improvements" into :class:`Verdict` s. Each has a status:

- ``"held"``: the numbers meet the stated rule;
- ``"not held"``: they do not;
- ``"not enough epochs"``: the run is too short for the claim to be tested yet;
- ``"not checked"``: the log lacks the columns (or the config the setting) it needs.

No claim is ever held by default: every verdict carries the measured numbers and the
threshold it was judged against. The monitoring points are in ``monitoring``, the
comparisons in ``baseline``, the Verdict type in ``verdicts``. The rules:

grad_norms_below_clip
    "Gradient norms should mostly stay below the clip threshold": at least 90%
    (``MOSTLY_BELOW``) of optimizer steps have a pre-clip norm <= ``grad_clip``. That is the
    Tuning Playbook's default (threshold near the 90th percentile of the norms). From step
    rows when present, else one minus ``RunData.clip_fraction``, else per-epoch
    grad_norm_p90 <= grad_clip in every epoch.
occasional_clips_up_to_6
    "Occasional clips up to 5-6": the largest pre-clip norm of the run (``RunData.largest_norm``)
    is <= 6.0.
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
    last 3 epochs (not a plateau: ``checks.losses.recent_improvement``, as TRAIN_LOSS_PLATEAU).

With a ``baseline`` (e.g. the round-1 History), over the epochs both runs have:

more_stable_gradients
    the late-window pre-clip norm is lower than the baseline's: ``RunData.growth``'s ``late``
    (the median of the pooled step norms of the last third of the common epochs; from epoch
    rows, the mean per-epoch median), as in ``summarize`` and ``diagnose``.
less_frequent_clipping
    the share of clipped steps (``RunData.clip_fraction``) is lower than the baseline's.
faster_lr_adaptation
    the LR is first cut fewer epochs after the best validation loss before it than in the
    baseline (or the run cut and the baseline did not).
better_validation_loss
    the best validation loss is lower than the baseline's.
"""

from __future__ import annotations

from typing import Any

from .baseline import compare_with_baseline
from .monitoring import MONITORING_POINTS
from .run_data import as_run_data
from .settings import resolve_settings
from .verdicts import HELD, NOT_CHECKED, NOT_ENOUGH_EPOCHS, NOT_HELD, STATUSES, Expectations, Verdict


def check_expectations(history: Any, config: Any, baseline: Any = None) -> Expectations:
    """Verdicts on the write-up's monitoring points (and, given a baseline run, its
    expected improvements). ``history``/``baseline``: anything ``diagnose`` accepts;
    ``config``: the run's TrainConfig (or dict of its fields, or None to use the
    history's stored config)."""
    data = as_run_data(history)
    settings, _ = resolve_settings(config, data)
    out = Expectations(claim(data, settings) for claim in MONITORING_POINTS)
    if baseline is not None:
        base = as_run_data(baseline)
        base_settings, _ = resolve_settings(None, base)
        out += compare_with_baseline(data, base, settings, base_settings)
    return out


__all__ = ["Expectations", "HELD", "NOT_CHECKED", "NOT_ENOUGH_EPOCHS", "NOT_HELD", "STATUSES", "Verdict",
           "check_expectations"]

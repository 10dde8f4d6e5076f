"""The LR range test's curves and suggestion rules (plain sequences in, numbers out).

Definitions
-----------
probe loss
    The loss on one fixed batch of ``probe_size`` training examples (drawn once with the
    sweep's ``seed``), taken in eval mode without gradients after every step
    (``LRRangeResult.probe_losses``; ``probe_start`` before the first). Unlike the loss of
    each step's own batch it has no batch-to-batch noise: when it goes up, the step made
    the model worse.
onset
    The first step whose probe loss is more than ``ONSET_RISE`` (10%) above the lowest
    probe loss so far (``probe_start`` included), or is not finite: the LR from which a
    single step can undo earlier progress (``LRRangeResult.onset_lr``).
suggestion (the default, ``probe_size > 0``)
    ``suggest_from_probe``: the LR at the onset: the largest LR of the sweep before any
    step made the model clearly worse. If the probe loss never rose, the sweep's last LR
    (raise ``end_lr``); if it rose on the first step, the first LR (lower ``start_lr``).
smoothed loss
    Exponential moving average of the step losses with Adam's bias correction,
    ``avg_t / (1 - beta^(t+1))`` (``ema_smooth``). Its first ``round(1 / (1 - beta)) - 1``
    values (the warm-up, where it is close to single batches) are skipped when its
    minimum is sought.
margin
    What counts as a real change of the smoothed loss: three standard deviations of its
    noise (from the raw losses up to the minimum, at least ten of them, shrunk by the
    EMA's factor ``sqrt((1 - beta) / (1 + beta))``), and at least 5% of the minimum.
rise
    The first step after the minimum from which the smoothed loss stays more than
    ``margin`` above it (or non-finite) to the end of the sweep: ``LRRangeResult.rise_lr``.
    A bump that comes back down is noise, not a rise.
suggestion without a probe batch (``probe_size=0``)
    ``suggest_lr``: a tenth of the LR at the minimum of the smoothed loss when the loss
    clearly fell, else a tenth of the LR where it rose (fastai's ``lr_min``). On small
    batches the step losses are too noisy for it: see ``lr_range_test``.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from ..measures import finite, mean, percentile

ONSET_RISE = 0.10  # a probe loss this much above its lowest so far marks the onset


class Ema:
    """The smoothed loss, one value at a time (see the module's definition)."""

    def __init__(self, smoothing: float) -> None:
        self.beta, self.avg, self.t = smoothing, 0.0, 0

    def add(self, value: float) -> float:
        self.avg = self.beta * self.avg + (1.0 - self.beta) * value
        self.t += 1
        return self.avg / (1.0 - self.beta**self.t)


def ema_smooth(losses: Sequence[float], smoothing: float) -> list[float]:
    """Exponential moving average with bias correction (as in Adam): ``avg_t / (1 - beta^(t+1))``."""
    ema = Ema(smoothing)
    return [ema.add(v) for v in losses]


def _warmup(smoothing: float) -> int:
    """Steps at the start of the smoothed curve that are still close to single batches."""
    return max(0, round(1.0 / (1.0 - smoothing)) - 1)


def _noise_sd(losses: Sequence[float] | None, upto: int, smoothing: float) -> float:
    """The smoothed loss's noise: the raw losses' spread up to ``upto`` (at least 10 of them), EMA-shrunk."""
    if losses is None:
        return 0.0
    head = finite(losses[: max(upto + 1, 10)])
    if len(head) < 3:
        return 0.0
    return statistics.stdev(head, mean(head)) * math.sqrt((1.0 - smoothing) / (1.0 + smoothing))


def curve_features(
    lrs: Sequence[float], smoothed: Sequence[float], losses: Sequence[float] | None, smoothing: float
) -> tuple[int, float, int | None, bool]:
    """``(i_min, margin, i_rise, fell)`` of a sweep (see the module's definitions).

    ``fell`` says whether the loss fell from its starting level (median of the first
    fifth of the sweep, at least 3 steps) by more than ``margin``.
    """
    n = len(smoothed)
    ok = [i for i in range(n) if math.isfinite(smoothed[i])]
    past_warmup = [i for i in ok if i >= _warmup(smoothing)] or ok
    i_min = min(past_warmup, key=lambda i: smoothed[i]) if ok else 0
    floor = smoothed[i_min] if ok else math.inf
    sd = _noise_sd(losses, i_min, smoothing)
    margin = max(3.0 * sd, 0.05 * abs(floor)) if math.isfinite(floor) else 0.0
    i_rise = None  # the first step from which every later one is clearly above the floor
    for i in range(n - 1, i_min, -1):
        if smoothed[i] <= floor + margin:
            break
        i_rise = i
    start = percentile((losses if losses is not None else smoothed)[: max(3, n // 5)], 50)
    fell = math.isfinite(floor) and math.isfinite(start) and start - floor > margin
    return i_min, margin, i_rise, fell


def suggest_lr(
    lrs: Sequence[float],
    smoothed: Sequence[float],
    losses: Sequence[float] | None = None,
    smoothing: float = 0.0,
    divisor: float = 10.0,
) -> tuple[float, str]:
    """The LR to start from by the step losses alone (the rule without a probe batch): ``(lr, method)``.

    When the loss clearly fell during the sweep: a tenth of the LR at the minimum of the
    smoothed loss. Why not the steepest fall of the curve (the other common rule)? A
    spike only ever raises the loss, and the smoothed curve then falls steeply on its way
    back down: a steepest-slope pick lands right after the spike, often decades below
    any LR that trains. A spike does not move the minimum, and a tenth of it sits in the
    falling part of a well-shaped curve (Smith 2017; fastai's ``lr_min``).

    When the loss did not fall by more than its noise (a short sweep often cannot see
    learning at small LRs, only the blow-up), the minimum is just the luckiest batch; the
    answer is then a tenth of the LR where the loss began to rise clearly. Pass the raw
    ``losses`` and the ``smoothing`` used so the noise level can be estimated.
    """
    if not finite(smoothed):
        return float(lrs[0]) / divisor, f"first LR / {divisor:g} (no finite loss)"
    i_min, _, i_rise, fell = curve_features(lrs, smoothed, losses, smoothing)
    if fell and i_min > 0:
        return float(lrs[i_min]) / divisor, f"LR at the smoothed loss's minimum / {divisor:g}"
    if i_rise is not None:
        return (
            float(lrs[i_rise]) / divisor,
            f"LR where the loss began to rise / {divisor:g} (no clear fall before it: the sweep saw only the blow-up)",
        )
    if i_min == 0:
        return float(lrs[0]) / divisor, f"first LR / {divisor:g} (the loss never fell: start lower)"
    return float(lrs[i_min]) / divisor, f"LR at the smoothed loss's minimum / {divisor:g} (flat curve: a weak hint)"


def probe_onset(probe_losses: Sequence[float], start: float, rise: float = ONSET_RISE) -> int | None:
    """Index of the first probe loss more than ``rise`` x |lowest so far| above that lowest, or non-finite.

    ``start`` (the probe loss before the first step) counts as the first "so far"; None
    when no value rose (the module's onset).
    """
    best = start if math.isfinite(start) else math.inf
    for i, value in enumerate(probe_losses):
        if not value <= best + rise * abs(best):  # also true for NaN and inf
            return i
        best = min(best, value)
    return None


def suggest_from_probe(lrs: Sequence[float], probe_losses: Sequence[float], start: float) -> tuple[float, str]:
    """The LR to start from by the probe loss (the default rule): ``(lr, method)``.

    The LR at the onset (the first step that made the fixed batch's loss more than 10%
    worse than its best so far): the largest LR of the sweep before any step made the
    model clearly worse. The suggestion is meant for a training of a few hundred steps or
    more; much shorter trainings take larger LRs. Measured on the reference experiment
    and on small regression tasks: see ``nbtrain.probes.lr_range``.
    """
    i = probe_onset(probe_losses, start)
    if i is None:
        return float(lrs[-1]), "last LR of the sweep (the probe loss never rose: raise end_lr)"
    if i == 0:
        return float(lrs[0]), "first LR of the sweep (the probe loss rose at once: lower start_lr)"
    return float(lrs[i]), f"LR where the probe loss first rose {ONSET_RISE:.0%} above its best so far"


__all__ = ["ONSET_RISE", "Ema", "curve_features", "ema_smooth", "probe_onset", "suggest_from_probe", "suggest_lr"]

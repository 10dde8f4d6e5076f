"""Run measurements: the one definition of every quantity nbtrain reports about a run.

The trainer's epoch rows, the diagnosis, the expectation checks, the round-1 symptoms,
run summaries, sweep tables and the static and live plots all take their numbers from
here, so one run shows the same figures everywhere. Functions take plain Python
sequences (no pandas, no torch), so the live-plot helper process can use them too.

Definitions
-----------
percentile
    Linear interpolation between the two nearest ranks (numpy's default), over the
    finite values only; NaN when there are none.
epoch statistics
    ``train_loss`` is the mean step loss; ``grad_norm_p50``/``p90``/``max`` are percentiles
    of the epoch's finite pre-clip step norms; ``clip_fraction`` is the share of steps
    clipped; ``n_steps`` counts them.
LR cut
    An epoch whose logged LR (after its scheduler step) is below the LR before it by more
    than a relative ``CUT_RTOL``. The LR before epoch 0 is its ``lr_start`` (or the
    configured LR); non-finite LRs are skipped.
clip fraction of a run
    Share of all optimizer steps clipped: from step ``clipped`` flags when the log has
    them, else the per-epoch ``clip_fraction`` weighted by ``n_steps``, else its plain
    mean. The source used is returned with the value.
gradient growth
    ``statistic(late window) / statistic(first epoch)`` of the pre-clip norm, where the
    late window is the last third of the epochs (``late_window``: at least one epoch,
    never the first) and the statistic is the median (``"p50"``), 90th percentile
    (``"p90"``) or maximum (``"max"``) of the window's pooled step norms. Without step
    rows, the per-epoch statistics stand in: the window's mean p50/p90 and its largest max.
    For a 7-epoch run the late window is epochs 5-6.
evaluation windows
    When evaluation points carry the global ``step`` they were taken at, the step rows of
    evaluation ``i`` are those with ``evaluation_step[i-1] < step <= evaluation_step[i]``
    (``evaluation_windows``); step rows after the last evaluation belong to none. Otherwise
    step rows are grouped by their integer epoch.
spike
    A value at least ``SPIKE_RATIO`` (10) times the running median: the median of the
    ``SPIKE_WINDOW`` (50) finite positive values before it, once at least
    ``SPIKE_MIN_HISTORY`` (10) of them exist (``spikes``). Relative to the run's own values,
    so norms of 1e5 can be normal; a steady rise moves the median along and is no spike.
    Zeros, NaN and inf are skipped (neither spikes nor part of the median).
plateau settings
    ``plateau_kwargs(config)``: the keyword arguments of torch's ``ReduceLROnPlateau``
    for a config (nbtrain always uses mode ``"min"`` and threshold mode ``"rel"``);
    ``uses_plateau(config)`` tells whether a config trains with it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

CUT_RTOL = 1e-9  # relative LR drop that counts as a cut (ignores float round-off)
PLATEAU_MODE = "min"
PLATEAU_THRESHOLD_MODE = "rel"
GROWTH_STATS = ("p50", "p90", "max")
SPIKE_RATIO = 10.0  # a spike is at least this many times the running median
SPIKE_WINDOW = 50  # values in the running median (the ones before the value tested)
SPIKE_MIN_HISTORY = 10  # values needed before the first one can be a spike


# -- numbers ---------------------------------------------------------------------------
def is_finite(value: Any) -> bool:
    """True for a finite int or float (bools and None are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers of ``values``, as floats, in order."""
    return [float(v) for v in values if is_finite(v)]


def percentile(values: Iterable[Any], q: float) -> float:
    """The ``q``-th percentile (0-100) of the finite ``values``; NaN when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q!r}")
    return _percentile_of_sorted(sorted(finite(values)), q)


def _percentile_of_sorted(ordered: Sequence[float], q: float) -> float:
    """``percentile`` of finite values already in ascending order."""
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * (q / 100.0)  # q / 100 is the same double as the literal 0.9
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[Any]) -> float:
    """Mean of the finite values; NaN when there are none."""
    ok = finite(values)
    return sum(ok) / len(ok) if ok else float("nan")


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den`` when both are finite and ``den > 0``, else None."""
    if not (is_finite(num) and is_finite(den)) or den <= 0:
        return None
    return float(num) / float(den)


# -- one epoch ---------------------------------------------------------------------------
def epoch_stats(steps: Sequence[dict]) -> dict:
    """The per-epoch statistics of a list of step rows (see the module's definitions)."""
    n = len(steps)
    norms = [r.get("grad_norm") for r in steps]
    return {
        "train_loss": mean(r.get("loss") for r in steps),
        "grad_norm_p50": percentile(norms, 50),
        "grad_norm_p90": percentile(norms, 90),
        "grad_norm_max": max(finite(norms), default=float("nan")),
        "clip_fraction": sum(1 for r in steps if r.get("clipped")) / n if n else float("nan"),
        "n_steps": n,
    }


# -- learning rate -------------------------------------------------------------------------
def lr_cuts(lrs: Sequence[Any], epochs: Sequence[int] | None = None,
            start: float | None = None) -> list[tuple[int, float, float]]:
    """``(epoch, old_lr, new_lr)`` for every epoch whose LR fell below the LR before it.

    ``lrs``: the LR after each epoch's scheduler step; ``epochs``: their epoch numbers
    (default 0, 1, ...); ``start``: the LR before the first epoch (unknown: None, so the
    first epoch cannot show a cut).
    """
    epochs = list(range(len(lrs))) if epochs is None else list(epochs)
    cuts = []
    prev = float(start) if is_finite(start) else None
    for e, value in zip(epochs, lrs):
        if not is_finite(value):
            continue
        if prev is not None and value < prev * (1 - CUT_RTOL):
            cuts.append((int(e), prev, float(value)))
        prev = float(value)
    return cuts


def uses_plateau(config: Any) -> bool:
    """Whether a config (TrainConfig, dict of its fields, or settings) uses ReduceLROnPlateau."""
    scheduler = config.get("scheduler") if isinstance(config, dict) else getattr(config, "scheduler", None)
    return scheduler == "plateau"


def plateau_kwargs(config: Any) -> dict:
    """``ReduceLROnPlateau``'s keyword arguments (and ``simulate_plateau``'s) for a config.

    Accepts a TrainConfig or anything with its ``scheduler_*`` and ``min_lr`` attributes.
    """
    return {
        "mode": PLATEAU_MODE,
        "factor": float(config.scheduler_factor),
        "patience": int(config.scheduler_patience),
        "threshold": float(config.scheduler_threshold),
        "threshold_mode": PLATEAU_THRESHOLD_MODE,
        "cooldown": int(config.scheduler_cooldown),
        "min_lr": float(config.min_lr),
    }


# -- clipping ------------------------------------------------------------------------------
def clip_fraction(clipped: Sequence[Any] | None = None, per_epoch: Sequence[Any] | None = None,
                  n_steps: Sequence[Any] | None = None) -> tuple[float | None, str]:
    """Share of all steps clipped, and where it came from (see the module's definitions)."""
    if clipped is not None and len(clipped):
        return sum(1.0 for c in clipped if c) / len(clipped), "step rows"
    if per_epoch is None:
        return None, ""
    pairs = [(i, float(v)) for i, v in enumerate(per_epoch) if is_finite(v)]
    if not pairs:
        return None, ""
    if n_steps is not None and all(is_finite(n_steps[i]) for i, _ in pairs):
        total = sum(float(n_steps[i]) for i, _ in pairs)
        if total > 0:
            return sum(v * float(n_steps[i]) for i, v in pairs) / total, "clip_fraction weighted by n_steps"
    return sum(v for _, v in pairs) / len(pairs), "mean of per-epoch clip_fraction"


# -- evaluation windows -----------------------------------------------------------------------
def evaluation_windows(step_numbers: Sequence[Any], evaluation_steps: Sequence[Any]) -> list[int | None] | None:
    """Per step row, the index of the evaluation whose window holds it (see the module's
    definitions), or None after the last evaluation; None when the steps cannot be placed
    (an evaluation step that is not finite, or evaluation steps that do not increase)."""
    evals = [float(s) if is_finite(s) else None for s in evaluation_steps]
    if any(s is None for s in evals) or any(b <= a for a, b in zip(evals, evals[1:])):
        return None
    out: list[int | None] = []
    for s in step_numbers:
        if not is_finite(s):
            out.append(None)
            continue
        i = bisect.bisect_left(evals, float(s))
        out.append(i if i < len(evals) else None)
    return out


# -- spikes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spike:
    """One value far above the running median before it (see the module's definitions)."""

    index: int  # position in the sequence given
    value: float
    median: float  # running median of the values before it
    ratio: float  # value / median


def spikes(values: Sequence[Any], ratio: float = SPIKE_RATIO, window: int = SPIKE_WINDOW,
           min_history: int = SPIKE_MIN_HISTORY) -> list[Spike]:
    """The spikes of ``values`` (see the module's definitions), in order."""
    if not ratio > 1 or window < 1 or min_history < 1:
        raise ValueError(f"need ratio > 1, window >= 1 and min_history >= 1, got {ratio!r}, {window!r}, {min_history!r}")
    recent: list[float] = []  # the window, in arrival order
    ordered: list[float] = []  # the same values, sorted
    out = []
    for i, v in enumerate(values):
        if not is_finite(v) or v <= 0:
            continue
        v = float(v)
        if len(ordered) >= min_history:
            median = _percentile_of_sorted(ordered, 50)
            if median > 0 and v >= ratio * median:
                out.append(Spike(i, v, median, v / median))
        recent.append(v)
        bisect.insort(ordered, v)
        if len(recent) > window:
            ordered.pop(bisect.bisect_left(ordered, recent.pop(0)))
    return out


# -- gradient growth -----------------------------------------------------------------------
def late_window(n_epochs: int) -> int:
    """How many of the last epochs form the late window: a third, at least one, never epoch 0."""
    if n_epochs < 2:
        return 0
    return min(max(1, n_epochs // 3), n_epochs - 1)


def _stat(values: Sequence[float], stat: str) -> float:
    if stat == "max":
        return max(finite(values), default=float("nan"))
    return percentile(values, 50 if stat == "p50" else 90)


@dataclass(frozen=True)
class Growth:
    """Gradient growth of a run (see the module's definition)."""

    stat: str  # "p50", "p90" or "max"
    first: float  # the statistic over the first epoch
    late: float  # the statistic over the late window
    ratio: float  # late / first
    first_epoch: int
    late_epochs: tuple[int, ...]
    source: str  # "step rows" or "epoch rows"

    def describe(self) -> str:
        span = (f"epoch {self.late_epochs[0]}" if len(self.late_epochs) == 1
                else f"epochs {self.late_epochs[0]}-{self.late_epochs[-1]}")
        name = {"p50": "median", "p90": "90th percentile", "max": "largest"}[self.stat]
        return (f"{name} pre-clip norm {self.late:.3g} in {span} vs {self.first:.3g} in epoch {self.first_epoch}: "
                f"{self.ratio:.2f}x")


def growth_from_steps(norms_by_epoch: dict[int, Sequence[Any]], stat: str = "p50") -> Growth | None:
    """Growth from step norms grouped by epoch number (pooled over the late window)."""
    _check_stat(stat)
    epochs = sorted(norms_by_epoch)
    k = late_window(len(epochs))
    if k == 0:
        return None
    late = epochs[-k:]
    first = _stat(norms_by_epoch[epochs[0]], stat)
    last = _stat([v for e in late for v in norms_by_epoch[e]], stat)
    r = ratio(last, first)
    if r is None:
        return None
    return Growth(stat, first, last, r, epochs[0], tuple(late), "step rows")


def growth_from_epochs(values: Sequence[Any], epochs: Sequence[int], stat: str = "p50") -> Growth | None:
    """Growth from per-epoch statistics (``grad_norm_p50``/``p90``/``max``) when steps are missing."""
    _check_stat(stat)
    k = late_window(len(values))
    if k == 0:
        return None
    window = list(values[-k:])
    last = max(finite(window), default=float("nan")) if stat == "max" else mean(window)
    r = ratio(last, values[0])
    if r is None:
        return None
    return Growth(stat, float(values[0]), last, r, int(epochs[0]), tuple(int(e) for e in epochs[-k:]), "epoch rows")


def _check_stat(stat: str) -> None:
    if stat not in GROWTH_STATS:
        raise ValueError(f"stat must be one of {', '.join(map(repr, GROWTH_STATS))}, got {stat!r}")


__all__ = [
    "CUT_RTOL",
    "GROWTH_STATS",
    "Growth",
    "SPIKE_MIN_HISTORY",
    "SPIKE_RATIO",
    "SPIKE_WINDOW",
    "Spike",
    "PLATEAU_MODE",
    "PLATEAU_THRESHOLD_MODE",
    "clip_fraction",
    "epoch_stats",
    "evaluation_windows",
    "finite",
    "growth_from_epochs",
    "growth_from_steps",
    "is_finite",
    "late_window",
    "lr_cuts",
    "mean",
    "percentile",
    "plateau_kwargs",
    "ratio",
    "spikes",
    "uses_plateau",
]

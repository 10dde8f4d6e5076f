"""What the static plots write on their axes: metric names in words, units, epoch and LR axes, legends.

- ``metric_label(metric, data)``: ``"validation loss (MSE, normalized units)"``, ``"pre-clip
  gradient norm (L2), median per epoch"``, ``"steps clipped (% of the epoch's steps)"``; a
  column it does not know is its name with spaces. A loss has units only when the run says
  what it is: nbtrain's reference experiment (mean squared error, on z-scored targets unless
  its config has ``normalize=False``).
- ``epoch_axis``: ``"epoch (0 = first)"``, integer ticks (epochs are 0-based everywhere).
- ``lr_axis``: a log scale whose ticks are the LR values the runs used, written as people
  write them (``2e-5``), at most ``MAX_LR_TICKS`` of them (the smallest, the largest and the
  initial ones first).
- ``legend``: text at ``LEGEND_FONTSIZE`` (9 pt, readable at notebook size), placed outside the
  data, right of the axes, when it has more than ``INSIDE_MAX`` entries.
- ``STYLES``: marker and line style per run, so curves that lie on top of each other still
  show apart.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..diagnosis.formatting import sci
from ..diagnosis.run_data import RunData

LEGEND_FONTSIZE = 9
INSIDE_MAX = 4  # legend entries drawn inside the axes; more go outside
MAX_LR_TICKS = 6
EPOCH_LABEL = "epoch (0 = first)"
GRAD_NORM_LABEL = "pre-clip gradient norm (L2)"
LR_LABEL = "learning rate"
# marker, line style per run: the n-th run gets the n-th (cycled)
STYLES = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-."), ("*", ":"))

_LABELS = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "grad_norm_p50": f"{GRAD_NORM_LABEL}, median per epoch",
    "grad_norm_p90": f"{GRAD_NORM_LABEL}, 90th percentile per epoch",
    "grad_norm_max": f"{GRAD_NORM_LABEL}, largest per epoch",
    "grad_norm": GRAD_NORM_LABEL,
    "clip_fraction": "steps clipped (% of the epoch's steps)",
    "lr": f"{LR_LABEL} (after the epoch's scheduler step)",
    "lr_start": f"{LR_LABEL} (at the epoch's start)",
    "n_steps": "optimizer steps per epoch",
    "epoch_time_s": "epoch time (s)",
}
PERCENT_METRICS = ("clip_fraction",)  # drawn as percentages


def loss_units(data: RunData | None) -> str | None:
    """``"MSE, normalized units"`` or ``"MSE, raw units"`` for the reference experiment; else None."""
    if data is None or data.meta.get("experiment") != "reference":
        return None
    config = data.meta.get("config") or {}
    return "MSE, raw units" if config.get("normalize") is False else "MSE, normalized units"


def metric_label(metric: str, data: RunData | None = None, units: str | None = "auto") -> str:
    """A column's name in words (see the module's docstring); ``units``: a loss's units, "auto"
    to read them from ``data``, None for none."""
    text = _LABELS.get(metric, metric.replace("_", " "))
    if metric.endswith("loss"):
        units = loss_units(data) if units == "auto" else units
        if units:
            text = f"{text} ({units})"
    return text


def point_label(data: RunData) -> str:
    """The x label of evaluation points: the epoch (0-based), an optimizer step or an evaluation."""
    return {"epoch": EPOCH_LABEL, "step": "optimizer step"}.get(data.unit, "evaluation")


def epoch_axis(ax, data: RunData | None = None) -> None:
    """Label the x axis with the run's points and keep its ticks on whole numbers."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(point_label(data) if data is not None else EPOCH_LABEL)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def lr_ticks(values: Iterable[Any], first: float | None = None) -> list[float]:
    """The LR values to tick: every distinct positive finite value when there are few, else the
    smallest, the largest, ``first`` and values spread between them (at most ``MAX_LR_TICKS``)."""
    distinct: list[float] = []
    for v in values:
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v) and v > 0 and not any(math.isclose(v, d, rel_tol=1e-6) for d in distinct):
            distinct.append(v)
    distinct.sort()
    if len(distinct) <= MAX_LR_TICKS:
        return distinct
    keep = [distinct[0], distinct[-1]] + ([first] if first and first > 0 else [])
    lo, hi = math.log(distinct[0]), math.log(distinct[-1])
    for k in range(1, MAX_LR_TICKS - 2):  # spread the rest evenly in log space
        target = lo + (hi - lo) * k / (MAX_LR_TICKS - 2)
        keep.append(min(distinct, key=lambda d: abs(math.log(d) - target)))
    return sorted({round(v, 15) for v in keep})


def lr_axis(ax, values: Iterable[Any], first: float | None = None, axis: str = "y") -> list[float]:
    """A log-scaled LR axis ticked at the values used (``lr_ticks``), labelled ``2e-5``; returns the ticks."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = lr_ticks(values, first)
    if not ticks:
        return ticks
    which = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    which.set_major_locator(FixedLocator(ticks))
    which.set_major_formatter(_SciFormatter())
    which.set_minor_locator(NullLocator())
    lo, hi = min(ticks), max(ticks)
    pad = (hi / lo) ** 0.08 if hi > lo else 2.0
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo / pad, hi * pad)
    return ticks


def _SciFormatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: sci(v))


def legend(ax, outside: bool | None = None, title: str | None = None, **kwargs):
    """A legend at ``LEGEND_FONTSIZE``, right of the axes when it has more than ``INSIDE_MAX``
    entries (or ``outside=True``); None when the axes have nothing labelled."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if outside is None:
        outside = len(handles) > INSIDE_MAX
    if outside:
        kwargs.setdefault("loc", "upper left")
        kwargs.setdefault("bbox_to_anchor", (1.02, 1.0))
        kwargs.setdefault("borderaxespad", 0.0)
    return ax.legend(handles, labels, fontsize=LEGEND_FONTSIZE, title=title, title_fontsize=LEGEND_FONTSIZE,
                     **kwargs)


def style(i: int) -> dict:
    """Marker and line style of the ``i``-th run (``STYLES``, cycled)."""
    marker, line = STYLES[i % len(STYLES)]
    return {"marker": marker, "linestyle": line}


__all__ = ["EPOCH_LABEL", "GRAD_NORM_LABEL", "INSIDE_MAX", "LEGEND_FONTSIZE", "LR_LABEL", "MAX_LR_TICKS",
           "PERCENT_METRICS", "STYLES", "epoch_axis", "legend", "loss_units", "lr_axis", "lr_ticks",
           "metric_label", "point_label", "style"]

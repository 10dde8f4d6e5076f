"""One epoch-level metric for several runs on one Axes, readable however the runs differ.

Definitions (computed from the data, so the notes say what the numbers show):

off-scale run
    A run whose median absolute value of the metric is more than ``SCALE_RATIO`` (10) times,
    or less than a tenth of, the median of the other runs' medians. When that marks half of
    the runs or more (two runs, or two groups), the first run listed sets the scale instead.
    Off-scale runs are drawn against a second y axis on the right, and their legend entries
    say so with the ratio. Percentages (``clip_fraction``, drawn in %) share one scale and are
    never split.
coinciding curves
    Two runs with the same points whose values differ by at most ``SAME_RTOL`` (relative to the
    largest value) are "the same as" each other; by at most ``OVERLAP`` (0.5%) of the axis's
    data range, they lie "on top of" each other. The later run's legend entry names the first
    run it coincides with. Every run gets its own marker and line style (``labels.STYLES``),
    so coinciding curves still show.
"""

from __future__ import annotations

import statistics
import numpy as np

from ..diagnosis.run_data import as_run_data
from .labels import INSIDE_MAX, LEGEND_FONTSIZE, PERCENT_METRICS, epoch_axis, loss_units, lr_axis, metric_label, style

TITLES = {"val_loss": "Validation loss", "train_loss": "Training loss",
          "grad_norm_p50": "Median pre-clip gradient norm", "grad_norm_p90": "90th-percentile pre-clip gradient norm", "grad_norm_max": "Largest pre-clip gradient norm",
          "clip_fraction": "Steps clipped", "lr": "Learning rate"}
LEGEND_PLACES = ("auto", "right", "below", "inside", "none")
SCALE_RATIO = 10.0
SAME_RTOL = 1e-9
OVERLAP = 0.005


def _median(y: np.ndarray) -> float | None:
    ok = np.abs(y[np.isfinite(y)])
    return float(np.median(ok)) if ok.size else None


def off_scale(medians: dict[str, float | None], ratio: float = SCALE_RATIO) -> dict[str, float]:
    """``{label: ratio to the others}`` of the off-scale runs (see the module's definitions)."""
    pos = {k: m for k, m in medians.items() if m is not None and m > 0}
    if len(pos) < 2:
        return {}
    out = {}
    for k, m in pos.items():
        others = statistics.median([v for j, v in pos.items() if j != k])
        if m > ratio * others or m < others / ratio:
            out[k] = m / others
    if 2 * len(out) >= len(pos):  # no clear majority: the first run listed sets the scale
        first = pos[next(iter(pos))]
        out = {k: m / first for k, m in pos.items() if m > ratio * first or m < first / ratio}
    return out


def coinciding(series: dict[str, tuple[np.ndarray, np.ndarray]], span: float) -> dict[str, str]:
    """``{label: note}`` for runs whose curve coincides with an earlier run's (module's definitions)."""
    notes: dict[str, str] = {}
    labels = list(series)
    for j, b in enumerate(labels):
        xb, yb = series[b]
        for a in labels[:j]:
            xa, ya = series[a]
            if len(xa) != len(xb) or not np.array_equal(xa, xb) or not np.array_equal(np.isfinite(ya), np.isfinite(yb)):
                continue
            ok = np.isfinite(ya)
            if not ok.any():
                continue
            diff = float(np.max(np.abs(ya[ok] - yb[ok])))
            if diff <= SAME_RTOL * max(float(np.max(np.abs(ya[ok]))), 1e-300):
                notes[b] = f"same as {a}"
                break
            if span > 0 and diff <= OVERLAP * span:
                notes[b] = f"on top of {a}"
                break
    return notes


def _series(runs: dict, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    scale = 100.0 if metric in PERCENT_METRICS else 1.0
    out = {}
    for label, r in runs.items():
        values = r.col(metric)
        if values is not None:
            out[label] = (np.asarray(r.epoch_numbers, dtype=float), values * scale)
    return out


def _span(series: dict, labels: list[str]) -> float:
    ys = [y[np.isfinite(y)] for lab, (_, y) in series.items() if lab in labels]
    ys = [y for y in ys if y.size]
    return float(np.ptp(np.concatenate(ys))) if ys else 0.0


def plot_overlay(histories: dict, metric: str = "val_loss", ax=None, scale_ratio: float = SCALE_RATIO,
                 legend_at: str = "auto"):
    """One epoch-level ``metric`` for several runs: ``{label: history}``. Runs far off the others'
    scale go on a right-hand axis, coinciding curves are named in the legend (see the module's
    definitions). ``legend_at``: ``"auto"`` (inside for up to 4 runs, else right of the axes;
    below them when there is a right-hand axis), ``"right"``, ``"below"``, ``"inside"`` or
    ``"none"``. Returns the (left) Axes; ``ax.right_axis`` is the right-hand one, or None."""
    if not isinstance(histories, dict) or not histories:
        raise ValueError(f"histories must be a non-empty dict of label -> history, got {histories!r:.80}")
    if isinstance(scale_ratio, bool) or not isinstance(scale_ratio, (int, float)) or not scale_ratio > 1:
        raise ValueError(f"scale_ratio must be a number > 1, got {scale_ratio!r}")
    if legend_at not in LEGEND_PLACES:
        raise ValueError(f"legend_at must be one of {', '.join(map(repr, LEGEND_PLACES))}, got {legend_at!r}")
    runs = {str(label): as_run_data(h) for label, h in histories.items()}
    series = _series(runs, metric)
    if not series:
        raise ValueError(f"metric {metric!r} is not a column of any of the histories")
    import matplotlib
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    split = {} if metric in PERCENT_METRICS else off_scale({k: _median(y) for k, (_, y) in series.items()},
                                                           scale_ratio)
    main = [k for k in series if k not in split]
    notes = coinciding({k: series[k] for k in main}, _span(series, main))
    notes.update(coinciding({k: series[k] for k in split}, _span(series, list(split))))
    right = ax.twinx() if split else None
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    for i, (label, (x, y)) in enumerate(series.items()):
        extra = [notes[label]] if label in notes else []
        if label in split:
            extra.append(f"right axis, {split[label]:.3g}× the others")
        text = label + (f" ({'; '.join(extra)})" if extra else "")
        (right if label in split else ax).plot(x, y, label=text, color=colors[i % len(colors)], **style(i))
    _label_axes(ax, right, runs, metric, main, list(split))
    if metric in ("lr", "lr_start"):
        lr_axis(ax, np.concatenate([series[k][1] for k in main]))
    _place_legend(ax, right, legend_at)
    ax.right_axis = right
    return ax


def _place_legend(ax, right, where: str) -> None:
    """One legend for both axes (see ``plot_overlay``'s ``legend_at``)."""
    handles = ax.get_legend_handles_labels()[0] + (right.get_legend_handles_labels()[0] if right is not None else [])
    if where == "none" or not handles:
        return
    if where == "auto":
        where = "below" if right is not None else ("right" if len(handles) > INSIDE_MAX else "inside")
    kwargs: dict = {"fontsize": LEGEND_FONTSIZE}
    if where == "below":
        kwargs.update(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2 if len(handles) > 3 else 1)
    elif where == "right":
        kwargs.update(loc="upper left", bbox_to_anchor=(1.14 if right is not None else 1.02, 1.0), borderaxespad=0.0)
    ax.legend(handles, [h.get_label() for h in handles], **kwargs)


def _label_axes(ax, right, runs: dict, metric: str, main: list[str], split: list[str]) -> None:
    def words(labels: list[str]) -> str:
        texts = {metric_label(metric, runs[k]) for k in labels}
        return texts.pop() if len(texts) == 1 else metric_label(metric, units=None)

    epoch_axis(ax, runs[main[0]] if main else None)
    ax.set_ylabel(words(main))
    ax.set_title(TITLES.get(metric, metric_label(metric, units=None).capitalize()))
    if right is not None:
        units = {loss_units(runs[k]) for k in split} if metric.endswith("loss") else {None}
        unit = units.pop() if len(units) == 1 else None
        right.set_ylabel(", ".join(split) + (f" ({unit})" if unit else ""))
    if metric in PERCENT_METRICS:
        ax.set_ylim(0, 100)


__all__ = ["OVERLAP", "SAME_RTOL", "SCALE_RATIO", "coinciding", "off_scale", "plot_overlay"]

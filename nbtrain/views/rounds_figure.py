"""Rounds side by side on one figure: the demo's ``summary.png``.

``plot_rounds({"round1": run1, "round2": run2})`` draws, for every round, four panels on one
shared epoch axis (0-based, as everywhere):

- training and validation loss per epoch, each round's best validation loss circled;
- the pre-clip gradient norm per epoch (median, with a band up to the 90th percentile: the
  epoch rows' ``grad_norm_p50``/``p90``) against each round's own clip threshold;
- the share of each epoch's steps clipped (bars side by side), with the 50% line;
- the learning rate in force during each epoch (``lr_start``), on a log axis ticked at the
  values used.

Each round keeps one colour and one marker (``labels.style``) in every panel; curves that
coincide say so in their legend entry. Axis labels, legends and LR ticks are ``labels``'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnosis.run_data import RunData, as_run_data
from .labels import GRAD_NORM_LABEL, LR_LABEL, epoch_axis, legend, loss_units, lr_axis, metric_label, style

PANEL_TITLES = ("Training and validation loss", "Pre-clip gradient norm against each round's clip threshold",
                "Steps clipped per epoch", "Learning rate in force during each epoch")
HALF_LABEL = "half of the steps"


def _rounds(runs: Any) -> list[tuple[str, RunData, float | None]]:
    """``(label, data, clip threshold)`` per round of ``{label: run}`` (a run: anything with
    ``.history`` and ``.config``, or a history ``diagnose`` reads)."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs must be a non-empty dict of label -> run, got {runs!r:.80}")
    out = []
    for label, run in runs.items():
        history = getattr(run, "history", run)
        config = getattr(run, "config", None)
        data = as_run_data(history)
        if config is not None:
            clip = config.grad_clip
        else:
            stored = data.meta.get("config") or {}
            clip = stored.get("grad_clip") if isinstance(stored, dict) else None
        out.append((str(label), data, clip))
    return out


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and np.allclose(a, b, equal_nan=True)


def _loss_panel(ax, rounds) -> None:
    for i, (label, data, _) in enumerate(rounds):
        color, marker = f"C{i}", style(i)["marker"]
        x = data.epoch_numbers
        train, val = data.col("train_loss"), data.col("val_loss")
        if train is not None:
            ax.plot(x, train, color=color, marker=marker, linestyle="--", alpha=0.75, label=f"{label} training")
        if val is not None:
            ax.plot(x, val, color=color, marker=marker, linestyle="-", label=f"{label} validation")
            if np.isfinite(val).any():
                k = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
                ax.scatter([x[k]], [val[k]], s=160, facecolors="none", edgecolors="black", zorder=3,
                           label="best validation loss" if i == 0 else None)
    units = loss_units(rounds[0][1])
    ax.set_ylabel(f"loss ({units})" if units else "loss")


def _norm_panel(ax, rounds) -> None:
    for i, (label, data, clip) in enumerate(rounds):
        color, marker = f"C{i}", style(i)["marker"]
        x = data.epoch_numbers
        p50, p90 = data.col("grad_norm_p50"), data.col("grad_norm_p90")
        if p50 is not None:
            ax.plot(x, p50, color=color, marker=marker, label=f"{label} median")
            if p90 is not None:
                ax.fill_between(x, p50, p90, color=color, alpha=0.18, label=f"{label} median to 90th percentile")
        if clip is not None:
            same = any(c == clip for _, _, c in rounds[:i])
            ax.axhline(clip, color=color, linestyle=(0, (5, 3)) if i % 2 == 0 else (2, (5, 3)), lw=1.6,
                       label=f"{label} clip threshold {clip:g}" + (" (same as above)" if same else ""))
    ax.set_ylabel(f"{GRAD_NORM_LABEL}, per epoch")
    ax.set_ylim(bottom=0)


def _clip_panel(ax, rounds) -> None:
    n = len(rounds)
    width = 0.8 / n
    for i, (label, data, _) in enumerate(rounds):
        cf = data.col("clip_fraction")
        if cf is None:
            continue
        x = np.asarray(data.epoch_numbers, dtype=float) + (i - (n - 1) / 2) * width
        ax.bar(x, np.nan_to_num(cf) * 100, width=width, color=f"C{i}", label=label)
    ax.axhline(50, color="red", linestyle=":", label=HALF_LABEL)
    ax.set_ylim(0, 100)
    ax.set_ylabel(metric_label("clip_fraction"))


def _lr_in_force(data: RunData) -> np.ndarray | None:
    """The LR during each epoch: ``lr_start``, else the previous epoch's ``lr`` (the first: its own)."""
    start = data.col("lr_start")
    if start is not None:
        return start
    lr = data.col("lr")
    return None if lr is None else np.concatenate([lr[:1], lr[:-1]])


def _lr_panel(ax, rounds) -> None:
    drawn: list[tuple[str, np.ndarray]] = []
    for i, (label, data, _) in enumerate(rounds):
        lr = _lr_in_force(data)
        if lr is None:
            continue
        twin = next((other for other, y in drawn if _same(y, lr)), None)
        ax.plot(data.epoch_numbers, lr, color=f"C{i}", drawstyle="steps-post", **style(i),
                label=label + (f" (same as {twin})" if twin else ""))
        drawn.append((label, lr))
    lr_axis(ax, [v for _, y in drawn for v in y])
    ax.set_ylabel(LR_LABEL)


def plot_rounds(runs: dict, png: str | os.PathLike | None = None):
    """The four panels of the module's docstring for ``{label: run}``; returns the Figure (with
    ``png``, also writes it there and closes it)."""
    import matplotlib.pyplot as plt

    rounds = _rounds(runs)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, draw, title in zip(axes.flat, (_loss_panel, _norm_panel, _clip_panel, _lr_panel), PANEL_TITLES):
        draw(ax, rounds)
        ax.set_title(title)
        epoch_axis(ax, rounds[0][1])
        legend(ax, outside=False, loc="best")
    first = rounds[0][1].epoch_numbers
    span = f"epochs {first[0]}-{first[-1]}" if len(first) > 1 else f"epoch {first[0]}" if first else "no epochs"
    fig.suptitle(f"{' vs '.join(label for label, _, _ in rounds)} ({span})")
    fig.tight_layout()
    if png is not None:
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100)
        plt.close(fig)
    return fig


__all__ = ["HALF_LABEL", "PANEL_TITLES", "plot_rounds"]

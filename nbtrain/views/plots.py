"""Matplotlib views of a History (or a DataFrame of epoch rows, like ``diagnose``).

Every function takes ``ax=None``, creates a figure only when no Axes is given, and
returns the Axes it drew on (``plot_run``, all four views of one run, returns its Figure).
LR cuts are ``nbtrain.measures.lr_cuts`` (through ``RunData.lr_cuts``), marked when the LR
moves in cuts (``lr_shapes.classify``), not on smooth schedules. Evaluation points are
drawn at their epoch, or at their step when the run names them by step (``RunData.unit``).
Axes are labelled in words with their units (``labels``): epochs 0-based with integer ticks,
the LR on a log scale ticked at the values used, legends at 9 pt. ``plot_overlay`` (several
runs, one metric) lives in ``overlay``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..diagnosis.formatting import sci
from ..diagnosis.lr_shapes import classify
from ..diagnosis.run_data import RunData, as_run_data
from ..diagnosis.settings import resolve_settings
from .labels import GRAD_NORM_LABEL, LEGEND_FONTSIZE, LR_LABEL, epoch_axis, legend, loss_units, lr_axis
from .overlay import plot_overlay

CLIP_LINE_LABEL = "clip threshold"


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    return ax


def _clip_from(data: RunData, clip: float | None) -> float | None:
    if clip is not None:
        if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip <= 0:
            raise ValueError(f"clip must be a positive number or None, got {clip!r}")
        return float(clip)
    cfg = data.meta.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("grad_clip"), (int, float)):
        return float(cfg["grad_clip"])
    return None


def plot_losses(history: Any, ax=None):
    """Training and validation loss per epoch (or evaluation), the best validation point marked."""
    data = as_run_data(history)
    ax = _axes(ax)
    x = data.epoch_numbers
    for name, label in (("train_loss", "training"), ("val_loss", "validation")):
        values = data.col(name)
        if values is not None:
            ax.plot(x, values, marker="o", label=label)
    val = data.col("val_loss")
    if val is not None and np.isfinite(val).any():
        i = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
        ax.scatter([x[i]], [val[i]], s=120, facecolors="none", edgecolors="black", zorder=3, label="best validation")
        ax.annotate(f"best {val[i]:.4g} ({data.units().at(x[i])})", (x[i], val[i]), xytext=(5, 10),
                    textcoords="offset points", fontsize=LEGEND_FONTSIZE)
    epoch_axis(ax, data)
    units = loss_units(data)
    ax.set_ylabel(f"loss ({units})" if units else "loss")
    ax.set_title("Training and validation loss")
    legend(ax)
    return ax


def plot_grad_norms(history: Any, clip: float | None = None, ax=None, log: bool = False):
    """Pre-clip gradient norm per step (or per epoch), the p50-p90 band per epoch and
    the clip threshold. ``clip=None`` uses the threshold in the history's stored config."""
    data = as_run_data(history)
    ax = _axes(ax)
    clip = _clip_from(data, clip)
    steps = data.steps
    p50, p90, mx = data.col("grad_norm_p50"), data.col("grad_norm_p90"), data.col("grad_norm_max")
    band = f"{data.units().noun} p50-p90"  # median to 90th percentile
    if steps is not None and "grad_norm" in steps.columns:
        x = steps["step"].to_numpy() if "step" in steps.columns else np.arange(len(steps))
        norms = data.col("grad_norm", "step")
        keep = data.logged("grad_norm", "step")
        ax.plot(x[keep], norms[keep], lw=0.6, alpha=0.6, label="each optimizer step")
        if p50 is not None and p90 is not None and data.step_point is not None:
            for k in range(data.n_epochs):
                xs = x[data.step_point == k]
                if len(xs):
                    ax.fill_between([xs.min(), xs.max()], p50[k], p90[k], color="tab:orange", alpha=0.3,
                                    label=band if k == 0 else None)
        ax.set_xlabel("optimizer step")
    else:
        x = data.epoch_numbers
        if p50 is not None and p90 is not None:
            ax.fill_between(x, p50, p90, color="tab:orange", alpha=0.3, label=band)
        if p50 is not None:
            ax.plot(x, p50, marker="o", label="median")
        if mx is not None:
            ax.plot(x, mx, marker="^", linestyle=":", label="largest")
        epoch_axis(ax, data)
    if clip is not None:
        ax.axhline(clip, color="red", linestyle="--", label=f"{CLIP_LINE_LABEL} {clip:g}")
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(GRAD_NORM_LABEL)
    ax.set_title("Gradient norm before clipping")
    legend(ax)
    return ax


def plot_lr(history: Any, ax=None):
    """The LR per step (or per epoch) with each cut marked and annotated."""
    data = as_run_data(history)
    ax = _axes(ax)
    steps = data.steps
    per_step = steps is not None and "lr" in steps.columns
    cut_x: dict[int, float] = {}
    if per_step:
        x = steps["step"].to_numpy() if "step" in steps.columns else np.arange(len(steps))
        y = steps["lr"].astype(float).to_numpy()
        epoch_lr = data.col("lr")
        if epoch_lr is not None and len(x) and math.isfinite(epoch_lr[-1]):
            # one more point: the LR after the last epoch's scheduler step (shows a final cut)
            x, y = np.append(x, x.max() + 1), np.append(y, epoch_lr[-1])
        cut_x = _first_step_after(data, x[: len(steps)])
        ax.plot(x, y, drawstyle="steps-post", label="lr")
        ax.set_xlabel("optimizer step")
    else:
        lr = data.col("lr")
        x, y = np.asarray(data.epoch_numbers, dtype=float), lr
        if lr is not None:
            ax.plot(data.epoch_numbers, lr, drawstyle="steps-post", marker="o", label="lr (after epoch)")
        epoch_axis(ax, data)
    in_cuts = y is not None and classify(x, y).kind == "cuts"
    cuts = (data.lr_cuts() or []) if in_cuts else []  # nbtrain.measures.lr_cuts on the logged LRs
    x_last = max([cut_x.get(e, e) for e, _, _ in cuts] + [0])
    for e, old, new in cuts:
        xc = cut_x.get(e, e)
        ax.axvline(xc, color="gray", linestyle=":")
        late = x_last > 0 and xc > 0.7 * x_last and xc == x_last  # keep the last label inside the axes
        ax.annotate(f"{data.units().at(e)}: {sci(old)} → {sci(new)}", (xc, new), xytext=(-4 if late else 4, 8),
                    textcoords="offset points", ha="right" if late else "left", fontsize=LEGEND_FONTSIZE)
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("lr", "lr (after epoch)")]
    if lines and all(np.all(np.asarray(ln.get_ydata(), float) > 0) for ln in lines):
        used = np.concatenate([np.asarray(ln.get_ydata(), float) for ln in lines])
        lr_axis(ax, used, first=float(used[0]) if len(used) else None)
    ax.set_ylabel(LR_LABEL)
    ax.set_title("Learning rate" + (" (cuts marked)" if cuts else ""))
    return ax


def _first_step_after(data: RunData, x: np.ndarray) -> dict:
    """Per evaluation point, the x of the first step after it (where a cut made there shows)."""
    out = {}
    if data.grouping == "step":
        for e in data.epoch_numbers:
            after = x[x > e]
            out[e] = float(after.min()) if len(after) else float(x.max()) + 1
    elif data.grouping == "epoch" and data.unit == "epoch":
        epochs = data.steps["epoch"].to_numpy(dtype=float)
        for e in data.epoch_numbers:
            after = x[epochs > e]
            out[e] = float(after.min()) if len(after) else float(x.max()) + 1
    return out


def plot_clip_fraction(history: Any, ax=None):
    """Share of each epoch's steps that were clipped, with the Playbook's 50% line."""
    data = as_run_data(history)
    ax = _axes(ax)
    cf = data.col("clip_fraction")
    if cf is not None:
        ax.bar(data.epoch_numbers, cf * 100, color="tab:purple", label="steps clipped")
    ax.axhline(50, color="red", linestyle="--", label="half of the steps (the Playbook's limit)")
    ax.set_ylim(0, 100)
    epoch_axis(ax, data)
    ax.set_ylabel("steps clipped (% of the epoch's steps)")
    ax.set_title("Clipping")
    legend(ax)
    return ax


def plot_run(history: Any, config: Any = None):
    """Losses, gradient norms, LR and clipping of one run on one 2x2 Figure (a static
    picture; the interactive ``nbtrain.Dashboard`` is another thing). The title names the
    run and its LR, clip threshold and patience."""
    import matplotlib.pyplot as plt

    data = as_run_data(history)
    settings, _ = resolve_settings(config, data)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    plot_losses(data, ax=axes[0, 0])
    plot_grad_norms(data, clip=settings.grad_clip, ax=axes[0, 1])
    plot_lr(data, ax=axes[1, 0])
    plot_clip_fraction(data, ax=axes[1, 1])
    name = getattr(config, "label", None) or (data.meta.get("config") or {}).get("name") or "training run"
    parts = [f"lr {sci(settings.lr)}" if settings.lr else "",
             "no clipping" if settings.grad_clip is None and settings.clip_known else
             f"clip {settings.grad_clip:g}" if settings.grad_clip is not None else "",
             f"patience {settings.patience}" if settings.scheduler == "plateau" else
             str(settings.scheduler or "").replace("_", " ")]
    fig.suptitle(name + (": " + ", ".join(p for p in parts if p) if any(parts) else ""))
    fig.tight_layout()
    return fig


def data_dict(data: RunData) -> dict:
    """A RunData back in the ``{"epochs": ..., "steps": ..., "meta": ...}`` form plots accept."""
    return {"epochs": data.epochs, "steps": data.steps, "meta": data.meta}


__all__ = ["plot_clip_fraction", "plot_grad_norms", "plot_losses", "plot_lr", "plot_overlay", "plot_run"]

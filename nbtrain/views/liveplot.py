"""The dashboard's live plots: the runs of a session drawn into one PNG.

``render_png(snapshot)`` draws the three panels (losses, pre-clip gradient norms with the
clip line, LR with the scheduler's cuts) of every run in ``snapshot`` into PNG bytes with
matplotlib's Agg canvas (no pyplot: no figure is left open). The clipped share and the LR
cuts it shows are ``nbtrain.measures.clip_fraction`` and ``nbtrain.measures.lr_cuts``.

It runs in the dashboard's plot helper process (``nbtrain.views.plotprocess``), or in the
kernel when the helper cannot run, so this module imports only the standard library,
``nbtrain.measures`` and, when drawing, matplotlib and Pillow: never torch or ipywidgets.
"""
from __future__ import annotations

import io
import math
from typing import Any

from .. import measures

__all__ = ["PLOT_FIELDS", "plot_settings", "render_png"]

_MAX_POINTS = 600  # step curves are thinned to about this many points per run and panel
PLOT_FIELDS = ("grad_clip", "scheduler")  # the config fields the plots use


def plot_settings(config: Any) -> dict:
    """The config fields the plots use, as a plain dict (what the helper process receives)."""
    return {key: _cfg(config, key) for key in PLOT_FIELDS}


def _cfg(config: Any, key: str):
    """A config field from a TrainConfig or from the small dict the helper process receives."""
    return config[key] if isinstance(config, dict) else getattr(config, key)


def _buckets(n: int, max_points: int) -> int:
    return max(1, math.ceil(n / max_points))


def _thin_mean(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Average runs of consecutive points so at most ``max_points`` remain (smooths noisy losses)."""
    k = _buckets(len(xs), max_points)
    if k == 1:
        return xs, ys
    out_x, out_y = [], []
    for i in range(0, len(xs), k):
        chunk = ys[i : i + k]
        out_x.append(xs[min(i + k, len(xs)) - 1])
        out_y.append(sum(chunk) / len(chunk))
    return out_x, out_y


def _thin_envelope(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Keep each run's smallest and largest point, so spikes survive the thinning."""
    k = _buckets(len(xs), max_points // 2)
    if k == 1:
        return xs, ys
    out_x, out_y = [], []
    for i in range(0, len(xs), k):
        chunk = ys[i : i + k]
        lo = min(range(len(chunk)), key=chunk.__getitem__)
        hi = max(range(len(chunk)), key=chunk.__getitem__)
        for j in sorted({lo, hi}):
            out_x.append(xs[i + j])
            out_y.append(chunk[j])
    return out_x, out_y


def _thin_last(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Keep every k-th point and the points where the value changes (for step-like LR curves)."""
    k = _buckets(len(xs), max_points)
    if k == 1:
        return xs, ys
    keep = [i for i in range(len(xs)) if i % k == 0 or i == len(xs) - 1 or ys[i] != ys[i - 1]]
    return [xs[i] for i in keep], [ys[i] for i in keep]


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_TITLES = ("loss (train per step, epoch means; val)", "pre-clip gradient norm per step",
           "learning rate (dotted: scheduler cut)")


def render_png(snapshot: list[tuple], figsize: tuple[float, float] = (12.0, 3.4), dpi: int = 72) -> bytes:
    """Draw losses, pre-clip gradient norms and LR of the runs in ``snapshot`` as PNG bytes.

    Each snapshot item is ``(index, label, config, steps, epochs, steps_per_epoch, is_current)``
    with ``steps`` and ``epochs`` rows as in ``nbtrain.training.history`` and ``config`` a
    ``TrainConfig`` or a dict with its ``grad_clip`` and ``scheduler``. The current run is drawn
    in full colour; the others faintly. The x axis is epochs (a step at position k of
    epoch e sits at ``e + (k + 1) / steps_per_epoch``), so runs with different batch
    sizes line up. Step curves are thinned to a few hundred points (a panel is about
    300 pixels wide): losses are averaged, gradient norms keep each bucket's extremes.
    Drawing is kept cheap on purpose (fixed layout and legend places, no minor tick
    labels), because it runs while training shares the CPU.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=figsize, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.14, top=0.9, wspace=0.22)
    for ax, title in zip(axes, _TITLES):
        ax.set_title(title, fontsize=9)
    clip_lines = [_draw_run(axes, *item) for item in snapshot if item[3] or item[4]]
    _finish_axes(axes, has_data=bool(clip_lines), clip_shown=any(clip_lines))
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)  # fast: this runs next to training
    return buf.getvalue()


def _draw_run(axes, index: int, label: str, config: Any, steps: list, epochs: list, spe: int,
              is_current: bool) -> bool:
    """One run on the three panels; True when it drew a clip line (the current, clipped run)."""
    ax_loss, ax_grad, ax_lr = axes
    spe = spe or (epochs[0]["n_steps"] if epochs else 1) or 1
    xs = [(r["step"] + 1) / spe for r in steps]
    faint = not is_current
    color = _PALETTE[(index - 1) % len(_PALETTE)]
    alpha = 0.35 if faint else 1.0
    # losses: per-step training loss (thin, averaged), epoch train and validation loss
    if steps and not faint:
        x, y = _thin_mean(xs, [r["loss"] for r in steps])
        ax_loss.plot(x, y, color=color, alpha=0.3, lw=0.7)
    if epochs:
        ex = [r["epoch"] + 1 for r in epochs]
        if not faint:
            ax_loss.plot(ex, [r["train_loss"] for r in epochs], "o-", color=color, lw=1.0, ms=3,
                         label=f"{label} train")
        ax_loss.plot(ex, [r["val_loss"] for r in epochs], "s--", color=color, alpha=alpha,
                     lw=1.5 if not faint else 1.0, ms=4 if not faint else 2, label=f"{label} val")
    clip_line = False
    if steps:  # gradient norms, with the clip threshold and the clipped share
        x, y = _thin_envelope(xs, [r["grad_norm"] for r in steps])
        ax_grad.plot(x, y, color=color, alpha=0.25 if faint else 0.8, lw=0.6, label=label)
        clip = _cfg(config, "grad_clip")
        if not faint and clip is not None:
            clip_line = True
            share, _ = measures.clip_fraction(clipped=[r["clipped"] for r in steps])
            ax_grad.axhline(clip, color="#b00020", ls="--", lw=1.2,
                            label=f"clip {clip:g} ({share:.0%} of steps clipped)")
    if steps:  # learning rate per step
        x, y = _thin_last(xs, [r["lr"] for r in steps])
        ax_lr.plot(x, y, color=color, alpha=alpha, lw=1.4 if not faint else 1.0, drawstyle="steps-pre",
                   label=label)
    if epochs and measures.uses_plateau(config):  # the plateau scheduler's cuts
        cuts = measures.lr_cuts([r["lr"] for r in epochs], [r["epoch"] for r in epochs],
                                start=epochs[0].get("lr_start"))
        for epoch, old, new in cuts:
            ax_lr.axvline(epoch + 1, color=color, alpha=alpha, ls=":", lw=1.2)
            if not faint:
                ax_lr.annotate(f"{old:.1e} -> {new:.1e}", (epoch + 1, new),
                               fontsize=7, color=color, textcoords="offset points", xytext=(3, 4))
    return clip_line


def _finish_axes(axes, has_data: bool, clip_shown: bool) -> None:
    """Labels, scales and legends, or "no run yet" on empty panels."""
    from matplotlib.ticker import NullLocator

    ax_loss, ax_grad, ax_lr = axes
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    if not has_data:
        for ax in axes:
            ax.text(0.5, 0.5, "no run yet", transform=ax.transAxes, ha="center", va="center", color="grey")
        return
    for ax in (ax_grad, ax_lr):
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
    for ax, loc in ((ax_loss, "upper right"), (ax_grad, "upper left")):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc=loc)
    if not clip_shown:
        ax_grad.text(0.99, 0.02, "clipping off", transform=ax_grad.transAxes, ha="right", fontsize=8)

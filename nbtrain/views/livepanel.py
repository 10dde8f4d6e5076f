"""One panel of the live plots, kept between redraws: a strip of the picture with its own figure.

The live picture (``nbtrain.views.liveplot``) is three panels side by side: losses,
pre-clip gradient norms, learning rate. Each ``Panel`` is a matplotlib figure as wide as
its vertical strip of the picture, with its axes where ``subplots(1, 3)`` puts them in the
whole figure (``strips``; the strips meet in the gaps between the axes), so a panel whose
limits did not change is not drawn again. A redraw lays down, in the order a full draw
of the axes uses (by zorder, then as added):

* the *frame*: the axes' background, grid, ticks and tick labels, and the lines of the
  finished runs drawn before the current one, with the title and the axis label (drawn
  once, alone) laid over it. It is drawn only when the axes' limits, the runs' artists or
  a finished run's data change; otherwise its pixels are restored
  (``copy_from_bbox``/``restore_region``);
* the *live* artists (``animated``, so the frame leaves them out): the current run's
  lines, the spines, the texts;
* the legend, drawn alone onto a transparent layer and laid over the strip; its box is
  drawn when its entries change in shape, the clip line's share is written over it when
  only the share changes.

Layers drawn alone and laid over differ from drawing in place by at most a rounding
step (1-2 of 255 in a colour channel); a kept panel and a fresh one lay them the same way.
This module imports only the standard library and, when drawing, matplotlib and numpy.
"""
from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["Panel", "strips"]

_LEFT, _RIGHT, _BOTTOM, _TOP, _WSPACE = 0.045, 0.99, 0.14, 0.9, 0.22  # the three panels' layout
_TITLES = ("loss (train per step, epoch means; val)", "pre-clip gradient norm per step",
           "learning rate (dotted: scheduler cut)")
_LEGEND_PLACES = ("upper right", "upper left", None)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_DIGIT = re.compile(r"\d")
# The lines of a run whose data (or, for the clip line, label) a redraw updates, per panel.
LINE_FIELDS = (("loss", "train", "val"), ("grad", "clip_label"), ("lr",))


def strips(figsize: tuple[float, float], dpi: int) -> list[tuple[int, int, float, float]]:
    """``(x0, width, axes_left, axes_width)`` of each panel's strip, in pixels of the picture
    and fractions of the strip. The panels sit as ``subplots(1, 3)`` with left 0.045, right
    0.99 and wspace 0.22 puts them; a strip ends a quarter of the gap past its axes, leaving
    the next panel's tick labels the rest of the gap."""
    width = figsize[0] * dpi
    cell = (_RIGHT - _LEFT) / (3 + 2 * _WSPACE)
    lefts = [_LEFT + i * cell * (1 + _WSPACE) for i in range(3)]
    bounds = [0, *(int((left - 0.75 * _WSPACE * cell) * width) for left in lefts[1:]), int(width)]
    out = []
    for i, left in enumerate(lefts):
        x0, w = bounds[i], bounds[i + 1] - bounds[i]
        out.append((x0, w, (left * width - x0) / w, cell * width / w))
    return out


class Panel:
    """One panel (``number`` 0, 1, 2: losses, gradient norms, LR) in its own strip figure.

    ``has_data`` False: the panel says "no run yet" and is drawn in full each time.
    ``x0`` is the strip's first column in the picture; ``legend_layer`` the legend to lay
    over it after ``draw`` (None: no legend); ``frame_draws`` counts the frames drawn.
    """

    def __init__(self, number: int, figsize: tuple[float, float], dpi: int, has_data: bool) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullLocator

        self.number = number
        self.x0, width, axes_left, axes_width = strips(figsize, dpi)[number]
        inches = width / dpi
        while int(inches * dpi) < width:  # the strip is exactly ``width`` pixels wide
            inches = math.nextafter(inches, math.inf)
        self.fig = Figure(figsize=(inches, figsize[1]), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = ax = self.fig.add_axes((axes_left, _BOTTOM, axes_width, _TOP - _BOTTOM))
        ax.set_title(_TITLES[number], fontsize=9, y=1.0)  # where a full draw puts it; not searched for again
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        self._labels: list = []  # the title and the axis label, each drawn alone (see _alone)
        _place_axis_labels(ax, self.canvas, (number, tuple(figsize), dpi))
        if not has_data:
            ax.text(0.5, 0.5, "no run yet", transform=ax.transAxes, ha="center", va="center", color="grey")
        else:
            if number > 0:
                ax.set_yscale("log")
                ax.yaxis.set_minor_locator(NullLocator())
            for spine in ax.spines.values():  # drawn over the lines, as a full draw does
                spine.set_animated(True)
            # The title and the axis label never change: drawn once, laid over each frame.
            self._labels = [_alone(artist, self.canvas) for artist in (ax.title, ax.xaxis.label)]
            ax.title.set_visible(False)
            ax.xaxis.label.set_visible(False)
        self.has_data = has_data
        self.generation = 0  # counts the times the runs' artists were made
        self.lines: list[list] = []  # per run, its lines in LINE_FIELDS[number] order (None: not drawn)
        self.legend_layer: tuple | None = None  # (row0, col0, premultiplied colour, 1 - alpha)
        self.frame_draws = 0
        self._frame_key: Any = None
        self._frame = None
        self._legend: _LegendLayer | None = None

    # -- the runs' artists -------------------------------------------------------------------
    def make(self, curves: list, n_static: int) -> None:
        """Remove the runs' artists and make them for ``curves``; the first ``n_static`` runs
        (finished runs before the current one) go into the frame, the rest are live."""
        ax = self.ax
        for artist in [*ax.lines, *ax.texts]:
            artist.remove()
        self.lines = []
        ax.set_autoscale_on(False)  # no limits from half the artists (``draw`` scales to them all)
        for i, c in enumerate(curves):
            before = {id(a) for a in [*ax.lines, *ax.texts]}
            self.lines.append(_MAKERS[self.number](ax, c))
            if i >= n_static:
                for artist in [*ax.lines, *ax.texts]:
                    if id(artist) not in before:
                        artist.set_animated(True)
        if self.number == 1 and not any(c.clip_label for c in curves):
            ax.text(0.99, 0.02, "clipping off", transform=ax.transAxes, ha="right", fontsize=8).set_animated(True)
        ax.set_autoscale_on(True)
        self.generation += 1

    def update(self, curves: list) -> None:
        """New data for the lines (and the clip line's label) of the runs, same artists."""
        for lines, c in zip(self.lines, curves):
            for line, field in zip(lines, LINE_FIELDS[self.number]):
                if line is None:
                    continue
                if field == "clip_label":
                    line.set_label(c.clip_label)
                else:
                    line.set_data(*getattr(c, field))

    # -- drawing ---------------------------------------------------------------------------------
    def draw(self, static_key: Any = None):
        """Draw the panel; its pixels as an (height, width, 4) uint8 array (a view: copy it)."""
        import numpy as np

        if not self.has_data:
            self.canvas.draw()
            return np.asarray(self.canvas.buffer_rgba())
        ax = self.ax
        # relim places the lines drawn across the axes (the clip line, cut marks) through the
        # view, which rounds: start it from the same view every time, so that the limits
        # depend on the data alone (not on the previous render).
        ax.set_xlim(0.0, 1.0, auto=None)
        ax.set_ylim(*((1.0, 10.0) if ax.get_yscale() == "log" else (0.0, 1.0)), auto=None)
        ax.relim()
        ax.autoscale_view()
        key = (ax.get_xlim(), ax.get_ylim(), self.generation, static_key)
        if key != self._frame_key:
            self.canvas.draw()  # everything that is not animated: the frame
            for layer in self._labels:
                lay_over(np.asarray(self.canvas.buffer_rgba())[..., :3], layer, 0)
            self._frame = self.canvas.copy_from_bbox(self.fig.bbox)
            self._frame_key = key
            self.frame_draws += 1
        else:
            self.canvas.restore_region(self._frame)
        for artist in sorted((a for a in ax.get_children() if a.get_animated()), key=lambda a: a.get_zorder()):
            ax.draw_artist(artist)
        self._update_legend()
        return np.asarray(self.canvas.buffer_rgba())

    def _update_legend(self) -> None:
        """The legend's layer: its box drawn when the entries change in shape, the changing
        labels (the clip line's share) written over it when they change."""
        place = _LEGEND_PLACES[self.number]
        if place is None:
            return
        handles, labels = self.ax.get_legend_handles_labels()
        if not handles:
            self._legend = self.legend_layer = None
            return
        changing = [i for i, h in enumerate(handles) if any(h is line for line in self._clip_lines())]
        shapes = tuple(_DIGIT.sub("0", label) if i in changing else label for i, label in enumerate(labels))
        if self._legend is None or self._legend.key != (self.generation, shapes):
            self._legend = _LegendLayer(self.ax, self.canvas, handles, shapes, changing, place)
            self._legend.key = (self.generation, shapes)
        self.legend_layer = self._legend.show(tuple(labels))

    def _clip_lines(self) -> list:
        fields = LINE_FIELDS[self.number]
        return [line for lines in self.lines for line, field in zip(lines, fields)
                if field == "clip_label" and line is not None]


_LABEL_PLACES: dict[tuple, list] = {}  # (panel, figsize, dpi) -> where a full draw puts the axis labels


def _place_axis_labels(ax, canvas, key: tuple) -> None:
    """Fix the axis labels where a full draw puts them (below the tick labels, which are as
    high at any limits), so that drawing does not search for that place again."""
    if key not in _LABEL_PLACES:
        renderer = canvas.get_renderer()
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_tightbbox(renderer)  # places the label
        _LABEL_PLACES[key] = [axis.label.get_position() for axis in (ax.xaxis, ax.yaxis)]
    for axis, place in zip((ax.xaxis, ax.yaxis), _LABEL_PLACES[key]):
        axis.set_label_coords(*place, transform=axis.label.get_transform())


class _LegendLayer:
    """A legend drawn alone on a transparent canvas, to be laid over its panel.

    Its box (frame, handles, labels) is drawn once per shape: the ``changing`` labels (the
    clip line's, whose share changes as steps arrive) are laid out with their digits as 0
    (digits are equally wide) and left out (alpha 0); ``show(labels)`` then writes only
    those labels over the box.
    """

    def __init__(self, ax, canvas, handles: list, shapes: tuple, changing: list, place: str) -> None:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.legend import Legend

        self.key: Any = None
        self.legend = Legend(ax, handles, list(shapes), fontsize=6, loc=place)
        self.changing = changing
        for i in changing:
            self.legend.texts[i].set_alpha(0.0)
        width, height = canvas.get_width_height()
        self.renderer = RendererAgg(width, height, ax.get_figure(root=True).dpi)
        self.legend.draw(self.renderer)
        self.crop = _crop(self.renderer)
        self.box = self.renderer.copy_from_bbox(ax.get_figure(root=True).bbox)
        self.labels: tuple | None = None
        self.pixels: tuple | None = None

    def show(self, labels: tuple) -> tuple | None:
        """``(row, column, premultiplied colour, 1 - alpha)`` of the legend with ``labels``."""
        if labels == self.labels or self.crop is None:
            return self.pixels
        self.renderer.restore_region(self.box)
        for i in self.changing:
            text = self.legend.texts[i]
            text.set_text(labels[i])
            text.set_alpha(None)
            text.draw(self.renderer)
        self.labels, self.pixels = labels, _pixels(self.renderer, self.crop)
        return self.pixels


def _alone(artist, canvas) -> tuple | None:
    """``artist`` drawn alone on a transparent canvas of ``canvas``'s size, as ``_pixels``
    (None: it draws nothing)."""
    from matplotlib.backends.backend_agg import RendererAgg

    width, height = canvas.get_width_height()
    renderer = RendererAgg(width, height, canvas.figure.dpi)
    artist.draw(renderer)
    crop = _crop(renderer)
    return _pixels(renderer, crop) if crop is not None else None


def _crop(renderer) -> tuple | None:
    """``(row0, row1, col0, col1)`` of what was drawn on a transparent renderer (None: nothing)."""
    import numpy as np

    rows, cols = np.nonzero(np.asarray(renderer.buffer_rgba())[..., 3])
    return (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1) if len(rows) else None


def _pixels(renderer, crop: tuple) -> tuple:
    """``(row0, col0, premultiplied colour, 1 - alpha)`` of a renderer's ``crop``, for ``lay_over``."""
    import numpy as np

    r0, r1, c0, c1 = crop
    rgba = np.asarray(renderer.buffer_rgba())[r0:r1, c0:c1]
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return r0, c0, rgba[..., :3].astype(np.float32) * alpha, 1.0 - alpha


def lay_over(image, layer: tuple | None, x0: int) -> None:
    """Composite a layer (``_pixels``; None: nothing) onto ``image`` (an RGB array) at column ``x0``."""
    import numpy as np

    if layer is None:
        return
    r0, c0, colour, rest = layer
    h, w = rest.shape[:2]
    region = image[r0 : r0 + h, x0 + c0 : x0 + c0 + w]
    region[...] = np.rint(colour + region * rest).astype(np.uint8)


def _style(c) -> tuple[str, float, bool]:
    index, _label, faint = c.kind[:3]
    return _PALETTE[(index - 1) % len(_PALETTE)], 0.35 if faint else 1.0, faint


def _loss_lines(ax, c) -> list:
    """Per-step training loss (thin, averaged), epoch train and validation losses."""
    color, alpha, faint = _style(c)
    label = c.kind[1]
    loss = ax.plot(*c.loss, color=color, alpha=0.3, lw=0.7)[0] if c.loss else None
    train = (ax.plot(*c.train, "o-", color=color, lw=1.0, ms=3, label=f"{label} train")[0]
             if c.train else None)
    val = (ax.plot(*c.val, "s--", color=color, alpha=alpha, lw=1.5 if not faint else 1.0,
                   ms=4 if not faint else 2, label=f"{label} val")[0] if c.val else None)
    return [loss, train, val]


def _grad_lines(ax, c) -> list:
    """Pre-clip gradient norms, and the clip threshold labelled with the clipped share."""
    color, _alpha, faint = _style(c)
    grad = ax.plot(*c.grad, color=color, alpha=0.25 if faint else 0.8, lw=0.6, label=c.kind[1])[0] if c.grad else None
    clip = c.kind[7]
    clip_line = ax.axhline(clip, color="#b00020", ls="--", lw=1.2, label=c.clip_label) if clip is not None else None
    return [grad, clip_line]


def _lr_lines(ax, c) -> list:
    """Learning rate per step, and the plateau scheduler's cuts (annotated for the current run)."""
    color, alpha, faint = _style(c)
    lr = (ax.plot(*c.lr, color=color, alpha=alpha, lw=1.4 if not faint else 1.0, drawstyle="steps-pre",
                  label=c.kind[1])[0] if c.lr else None)
    for epoch, old, new in c.kind[9]:
        ax.axvline(epoch + 1, color=color, alpha=alpha, ls=":", lw=1.2)
        if not faint:
            ax.annotate(f"{old:.1e} -> {new:.1e}", (epoch + 1, new),
                        fontsize=7, color=color, textcoords="offset points", xytext=(3, 4))
    return [lr]


_MAKERS = (_loss_lines, _grad_lines, _lr_lines)

"""One panel of the live plots, kept between redraws: a strip of the picture with its own figure.

The live picture (``nbtrain.views.liveplot``) is three panels side by side: losses,
pre-clip gradient norms, learning rate. Each ``Panel`` is a matplotlib figure as wide as
its vertical strip of the picture, with its axes where ``subplots(1, 3)`` puts them in the
whole figure (``strips``; the strips meet in the gaps between the axes), so a panel whose
limits did not change is not drawn again. A redraw lays down, in the order a full draw
of the axes uses (by zorder, then as added):

* the *frame*: the axes' background, grid, ticks and tick labels, and the lines of the
  finished runs drawn before the current one, with the title and the axis label (drawn
  once, alone) laid over it. It is drawn only when the axes' limits or ticks, the finished
  runs' artists or their data change (the current run's artists made again, as on its
  first epoch, leave it as it is); otherwise its pixels are restored
  (``copy_from_bbox``/``restore_region``);
* the *live* artists (``animated``, so the frame leaves them out): the current run's
  lines, the clip line's note of the clipped share, the spines, the texts.

Which colour is which run, and what each kind of line means, is the key under the panels
(``nbtrain.views.livekey``), not a legend over the data. Readable at the picture's size:
tick labels, notes and the key at ``FONT`` (9 pt), titles larger. The x axis counts epochs
from 0, as every report does, to the end of the epochs the runs' configs ask for (known
from the first redraw): epoch ``e``'s steps fill the span from ``e`` to ``e + 1``,
labelled ``e`` in its middle, where its epoch means and validation loss sit; a scheduler
cut after epoch ``e`` is marked where that span ends. The LR axis is labelled at the LRs
the runs used (``lr_text``: ``2e-5``), not at powers of ten.

Layers drawn alone and laid over differ from drawing in place by at most a rounding
step (1-2 of 255 in a colour channel); a kept panel and a fresh one lay them the same way.
This module imports only the standard library and, when drawing, matplotlib and numpy.
"""
from __future__ import annotations

import math
from typing import Any

from .liveaxes import lr_view, round_out, spread

__all__ = ["FONT", "PALETTE", "Panel", "lr_text", "run_color", "strips"]

_LEFT, _RIGHT, _BOTTOM, _TOP, _WSPACE = 0.05, 0.99, 0.16, 0.88, 0.3  # the three panels' layout
_TITLES = ("loss", "pre-clip gradient norm (L2)", "learning rate")
FONT = 9  # points: tick labels, notes and the key
_TITLE_FONT = 10.5
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_CLIP_COLOR = "#b00020"
_MAX_EPOCH_LABELS = 12  # more epochs than this: every k-th epoch labelled
_TICK_GAP = 1.3  # LR tick labels at least this many label heights apart
# The artists of a run whose data (or, for the clip note, text) a redraw updates, per panel.
LINE_FIELDS = (("loss", "train", "val"), ("grad", "clip_label"), ("lr",))


def run_color(index: int) -> str:
    """The colour of run number ``index`` (1-based) in the plots and the key."""
    return PALETTE[(index - 1) % len(PALETTE)]


def lr_text(value: float) -> str:
    """An LR as a tick label or in a run's label: scientific, up to three significant digits,
    ``2e-5``, ``3.16e-4``."""
    mantissa, _, exponent = f"{value:.2e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def strips(figsize: tuple[float, float], dpi: int) -> list[tuple[int, int, float, float]]:
    """``(x0, width, axes_left, axes_width)`` of each panel's strip, in pixels of the picture
    and fractions of the strip. The panels sit as ``subplots(1, 3)`` with left 0.05, right
    0.99 and wspace 0.3 puts them; a strip ends a quarter of the gap past its axes, leaving
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
    ``x0`` is the strip's first column in the picture; ``frame_draws`` counts the frames drawn.
    """

    def __init__(self, number: int, figsize: tuple[float, float], dpi: int, has_data: bool) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

        self.number = number
        self.x0, width, axes_left, axes_width = strips(figsize, dpi)[number]
        inches = width / dpi
        while int(inches * dpi) < width:  # the strip is exactly ``width`` pixels wide
            inches = math.nextafter(inches, math.inf)
        self.fig = Figure(figsize=(inches, figsize[1]), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = ax = self.fig.add_axes((axes_left, _BOTTOM, axes_width, _TOP - _BOTTOM))
        ax.set_title(_TITLES[number], fontsize=_TITLE_FONT, y=1.0)  # where a full draw puts it
        ax.set_xlabel("epoch", fontsize=FONT, labelpad=1)
        ax.tick_params(labelsize=FONT)
        ax.tick_params(axis="x", which="major", length=0)  # epoch numbers sit mid-span, untagged
        ax.grid(True, axis="y", alpha=0.3)
        ax.grid(True, axis="x", which="minor", alpha=0.3)  # the epochs' boundaries
        self._labels: list = []  # the title and the axis label, each drawn alone (see _alone)
        _place_axis_labels(ax, self.canvas, (number, tuple(figsize), dpi))
        if not has_data:
            ax.text(0.5, 0.5, "no run yet", transform=ax.transAxes, ha="center", va="center", color="grey",
                    fontsize=FONT)
        else:
            if number > 0:
                ax.set_yscale("log")
                ax.yaxis.set_minor_locator(NullLocator())
            if number == 1:  # norms as numbers (0.5, 1, 2, 5, 10), not only powers of ten
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
            for spine in ax.spines.values():  # drawn over the lines, as a full draw does
                spine.set_animated(True)
            # The title and the axis label never change: drawn once, laid over each frame.
            self._labels = [_alone(artist, self.canvas) for artist in (ax.title, ax.xaxis.label)]
            ax.title.set_visible(False)
            ax.xaxis.label.set_visible(False)
        self.has_data = has_data
        self.generation = 0  # counts the times the frame's artists (the finished runs drawn first) changed
        self._static: tuple | None = None  # what the frame's artists were made for
        self.lines: list[list] = []  # per run, its artists in LINE_FIELDS[number] order (None: not drawn)
        self.frame_draws = 0
        self._lr_marks: tuple = ()  # LRs to label on the LR axis, first the ones to keep
        self._ticks: tuple | None = None  # the x and y ticks set now
        self._planned = 0  # the most epochs a run's config asks for: the x axis spans them from the start
        self._frame_key: Any = None
        self._frame = None

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
            ax.text(0.99, 0.02, "clipping off", transform=ax.transAxes, ha="right",
                    fontsize=FONT).set_animated(True)
        ax.set_autoscale_on(True)
        self._planned = _planned(curves)
        self._lr_marks = lr_marks(curves) if self.number == 2 else ()
        static = (n_static, *(c.kind for c in curves[:n_static]))
        if static != self._static:  # the live artists are not in the frame: made again, it stays
            self._static = static
            self.generation += 1

    def update(self, curves: list) -> None:
        """New data for the lines (and the clip note's text) of the runs, same artists."""
        for lines, c in zip(self.lines, curves):
            for artist, field in zip(lines, LINE_FIELDS[self.number]):
                if artist is None:
                    continue
                if field == "clip_label":
                    artist.set_text(c.clip_label)
                else:
                    artist.set_data(*getattr(c, field))
        self._planned = _planned(curves)
        if self.number == 2:
            self._lr_marks = lr_marks(curves)

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
        if self.number == 2:  # not autoscaled: that would depend on the ticks set last time
            ax.set_ylim(*lr_view(ax.dataLim.y0, ax.dataLim.y1), auto=None)
        else:  # rounded out, so that the limits (and the frame) change only now and then
            ax.set_ylim(*round_out(*ax.get_ylim(), log=self.number == 1), auto=None)  # autoscaling stays on
        self._set_ticks()
        key = (ax.get_xlim(), ax.get_ylim(), self._ticks, self.generation, static_key)
        if key != self._frame_key:
            self.canvas.draw()  # everything that is not animated: the frame
            for layer in self._labels:
                lay_over(np.asarray(self.canvas.buffer_rgba())[..., :3], layer, 0)
            self._frame = self.canvas.copy_from_bbox(self.fig.bbox)
            self._frame_key = key
            self.frame_draws += 1
        else:
            self.canvas.restore_region(self._frame)
        self._place_notes()
        for artist in sorted((a for a in ax.get_children() if a.get_animated()), key=lambda a: a.get_zorder()):
            ax.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())

    def _place_notes(self) -> None:
        """Each clip note above its line, or below it when the line is near the top."""
        if self.number != 1:
            return
        ax = self.ax
        for lines in self.lines:
            note = lines[1]
            if note is not None:
                height = (ax.transData.transform((0.0, note.get_position()[1]))[1] - ax.bbox.y0) / ax.bbox.height
                note.set_verticalalignment("top" if height > 0.85 else "bottom")

    def _set_ticks(self) -> None:
        """The x axis to the end of the epochs the runs' configs ask for (or of the last epoch
        begun, when later), labelled by epoch number mid-span; the LR axis labelled at the
        runs' LRs. (The x limits known from the first redraw, the frame is not drawn again
        for each new epoch.)"""
        ax = self.ax
        end = ax.dataLim.x1
        epochs = max(1, self._planned, math.ceil(end - 1e-9) if math.isfinite(end) else 1)
        ax.set_xlim(0.0, float(epochs), auto=None)
        y_ticks = None
        if self.number == 2:
            y_ticks = spread(self._lr_marks, ax.get_ylim(), ax.bbox.height, FONT * self.fig.dpi / 72 * _TICK_GAP)
        ticks = (epochs, y_ticks)
        if ticks == self._ticks:
            return
        stride = math.ceil(epochs / _MAX_EPOCH_LABELS)
        shown = range(0, epochs, stride)
        ax.set_xticks([e + 0.5 for e in shown], labels=[str(e) for e in shown])
        ax.set_xticks(range(epochs + 1), minor=True)
        if y_ticks is not None:
            ax.set_yticks(y_ticks, labels=[lr_text(v) for v in y_ticks])
        self._ticks = ticks


def _planned(curves: list) -> int:
    """The most epochs any of the runs' configs asks for (0: none known)."""
    return max((c.planned for c in curves if c.planned), default=0)


def lr_marks(curves: list) -> tuple:
    """The LRs worth a tick, most important first: the current run's first LR, the LRs its
    plateau cuts set, its lowest and highest; then each earlier run's first LR and cuts."""
    ordered = [c for c in curves if not c.kind[2]] + [c for c in curves if c.kind[2]]
    marks: list = []
    for c in ordered:
        if not c.lr:
            continue
        values = c.lr[1]
        marks += [values[0], *(new for _epoch, _old, new in c.kind[9])]
        if not c.kind[2]:
            marks += [min(values), max(values)]
    return tuple(dict.fromkeys(v for v in marks if v > 0 and math.isfinite(v)))


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
    return run_color(index), 0.35 if faint else 1.0, faint


def _loss_lines(ax, c) -> list:
    """Per-step training loss (thin, averaged), epoch train and validation losses."""
    color, alpha, faint = _style(c)
    loss = ax.plot(*c.loss, color=color, alpha=0.3, lw=0.7)[0] if c.loss else None
    train = ax.plot(*c.train, "o-", color=color, lw=1.0, ms=3)[0] if c.train else None
    val = (ax.plot(*c.val, "s--", color=color, alpha=alpha, lw=1.5 if not faint else 1.0,
                   ms=4 if not faint else 2)[0] if c.val else None)
    return [loss, train, val]


def _grad_lines(ax, c) -> list:
    """Pre-clip gradient norms, and the clip threshold with a note of the clipped share."""
    color, _alpha, faint = _style(c)
    grad = ax.plot(*c.grad, color=color, alpha=0.25 if faint else 0.8, lw=0.6)[0] if c.grad else None
    clip = c.kind[7]
    note = None
    if clip is not None:
        ax.axhline(clip, color=_CLIP_COLOR, ls="--", lw=1.2)
        note = ax.text(0.98, clip, c.clip_label, transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                       color=_CLIP_COLOR, fontsize=FONT, bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1})
    return [grad, note]


def _lr_lines(ax, c) -> list:
    """Learning rate per step, and the plateau scheduler's cuts (annotated for the current run)."""
    color, alpha, faint = _style(c)
    lr = (ax.plot(*c.lr, color=color, alpha=alpha, lw=1.4 if not faint else 1.0, drawstyle="steps-pre")[0]
          if c.lr else None)
    for epoch, old, new in c.kind[9]:
        ax.axvline(epoch + 1, color=color, alpha=alpha, ls=":", lw=1.2)
        if not faint:
            ax.annotate(f"{lr_text(old)} -> {lr_text(new)}", (epoch + 1, new),
                        fontsize=FONT, color=color, textcoords="offset points", xytext=(3, 4))
    return [lr]


_MAKERS = (_loss_lines, _grad_lines, _lr_lines)

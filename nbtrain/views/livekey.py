"""The key under the live plots: which colour is which run, and what each kind of line means.

The live picture (``nbtrain.views.liveplot``) shows the key as rows under its three
panels, instead of a legend over each panel's data: the first rows name the runs (each in
its colour, earlier runs faint, as in the panels), the next ones say what the line styles
mean (training loss per step, epoch mean, validation loss, the clip threshold, a
scheduler cut, earlier runs), listing only what the panels show. Its text is ``FONT``
(9 pt). Its two strips (runs, line styles) are each drawn alone, on a figure as wide as
the picture, only when their entries change (a run added, finished or removed; its first
epoch, a cut) and kept for when the same entries come back; otherwise their pixels are
reused. The rows are as many as the entries need at that width.

This module imports only the standard library and, when drawing, matplotlib and numpy.
"""
from __future__ import annotations

from .livepanel import FONT, run_color

__all__ = ["STYLES", "Key", "key_entries"]

# What each style entry means, and how its sample line is drawn (matplotlib line keywords).
STYLES = {
    "step": ("training loss per step", {"color": "#555555", "alpha": 0.4, "lw": 0.8}),
    "train": ("training loss, epoch mean", {"color": "#555555", "marker": "o", "ms": 3, "lw": 1.0}),
    "val": ("validation loss", {"color": "#555555", "marker": "s", "ms": 4, "ls": "--", "lw": 1.5}),
    "clip": ("clip threshold", {"color": "#b00020", "ls": "--", "lw": 1.2}),
    "cut": ("LR cut by the scheduler", {"color": "#555555", "ls": ":", "lw": 1.2}),
    "faint": ("earlier runs (faint)", {"color": "#555555", "alpha": 0.35, "lw": 1.4}),
}
_ROW_GAP = 4  # pixels between the run rows and the style rows, and around the key
_KEEP = 8  # strips of each kind kept for reuse


def key_entries(curves: list) -> tuple:
    """``(runs, styles)``: each run's ``(index, label, faint)`` and the style entries that
    the panels show, from the runs' kinds (``liveplot.Curves.kind``)."""
    runs = tuple((c.kind[0], c.kind[1], c.kind[2]) for c in curves)
    current = [c.kind for c in curves if not c.kind[2]]
    shown = {
        "step": any(k[3] for k in current),
        "train": any(k[4] for k in current),
        "val": any(c.kind[5] for c in curves),
        "clip": any(k[7] is not None for k in current),
        "cut": any(c.kind[9] for c in curves),
        "faint": any(c.kind[2] for c in curves),
    }
    return runs, tuple(name for name in STYLES if shown[name])


class Key:
    """The key's pixels for a picture ``width`` pixels wide: a strip naming the runs over a
    strip of line styles, each drawn only when its entries change and kept (the last
    ``_KEEP`` of each) for when they come back, as the same styles do in each new run;
    ``draws`` counts the strips drawn."""

    def __init__(self, width: int, dpi: int) -> None:
        self.width = width
        self.dpi = dpi
        self.draws = 0
        self.legends: list = []  # the legends of the key shown last: runs, then line styles
        self._strips: dict = {}  # (runs or styles, their entries) -> (pixels, legend)

    def pixels(self, curves: list):
        """The key of ``curves`` as an (height, width, 3) uint8 array: ``_ROW_GAP`` white rows
        above, between and below the strips."""
        import numpy as np

        runs, styles = key_entries(curves)
        strips = [self._strip(runs, False)] + ([self._strip(styles, True)] if styles else [])
        self.legends = [legend for _pixels, legend in strips]
        gap = np.full((_ROW_GAP, self.width, 3), 255, dtype=np.uint8)
        parts = [gap]
        for pixels, _legend in strips:
            parts += [pixels, gap]
        return np.concatenate(parts)

    def _strip(self, entries: tuple, styles: bool) -> tuple:
        """``(pixels, legend)`` of the runs' strip or the line styles' strip, kept by entries."""
        key = (styles, entries)
        if key not in self._strips:
            if sum(k[0] == styles for k in self._strips) >= _KEEP:  # the oldest of its kind goes
                del self._strips[next(k for k in self._strips if k[0] == styles)]
            self._strips[key] = self._draw(entries, styles)
            self.draws += 1
        return self._strips[key]

    def _draw(self, entries: tuple, styles: bool) -> tuple:
        """One strip: the runs (``(index, label, faint)``, each in its colour) or the line
        styles' names, as a legend in as few rows as fit, cropped to what it draws."""
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        row = FONT * self.dpi / 72 * 1.7  # one row of entries, in pixels
        height = int(row * len(entries) + 2 * _ROW_GAP)  # room for one entry a row
        fig = Figure(figsize=(self.width / self.dpi, height / self.dpi), dpi=self.dpi)
        canvas = FigureCanvasAgg(fig)
        if styles:
            handles = [Line2D([], [], **STYLES[name][1]) for name in entries]
            labels, color = [STYLES[name][0] for name in entries], "#333333"
        else:
            handles = [Line2D([], [], color=run_color(index), lw=2.0, alpha=0.45 if faint else 1.0)
                       for index, _label, faint in entries]
            labels, color = [label for _i, label, _f in entries], "black"
        legend = self._legend(fig, canvas.get_renderer(), handles, labels, 1.0 - _ROW_GAP / height, color)
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        used = np.nonzero((rgb < 250).any(axis=(1, 2)))[0]
        pixels = rgb[int(used.min()) : int(used.max()) + 1].copy() if len(used) else rgb[:0].copy()
        return pixels, legend

    def _legend(self, fig, renderer, handles: list, labels: list, top: float, color: str):
        """A legend in as few rows as fit the width (rows filled evenly), centred, its top at
        ``top`` (a fraction of the figure's height)."""
        import math

        legend = None
        for rows in range(1, len(handles) + 1):
            ncol = math.ceil(len(handles) / rows)
            if legend is not None:
                legend.remove()
            legend = fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, top), ncol=ncol,
                                frameon=False, fontsize=FONT, labelcolor=color, handlelength=2.2,
                                columnspacing=1.6, borderaxespad=0.0, borderpad=0.0)
            if legend.get_window_extent(renderer).width <= 0.98 * self.width:
                break
        return legend

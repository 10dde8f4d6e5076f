"""The key under the live plots: which colour is which run, and what each kind of line means.

The live picture (``nbtrain.views.liveplot``) shows the key as rows under its three
panels, instead of a legend over each panel's data: the first rows name the runs (each in
its colour, earlier runs faint, as in the panels), the next ones say what the line styles
mean (training loss per step, epoch mean, validation loss, the clip threshold, a
scheduler cut, earlier runs), listing only what the panels show. Its text is ``FONT``
(9 pt). It is drawn alone, on a figure as wide as the picture, only when its entries
change (a run added, finished or removed, its first epoch, a cut); otherwise its pixels
are reused. The rows are as many as the entries need at that width.

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
    """The key's pixels for a picture ``width`` pixels wide, kept while its entries stay the same;
    ``draws`` counts the keys drawn."""

    def __init__(self, width: int, dpi: int) -> None:
        self.width = width
        self.dpi = dpi
        self.draws = 0
        self.figure = None  # the figure of the last key drawn (its legends: runs, then line styles)
        self._entries = None
        self._pixels = None

    def pixels(self, curves: list):
        """The key of ``curves`` as an (height, width, 3) uint8 array."""
        entries = key_entries(curves)
        if entries != self._entries:
            self._pixels = self._draw(*entries)
            self._entries = entries
            self.draws += 1
        return self._pixels

    def _draw(self, runs: tuple, styles: tuple):
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        row = FONT * self.dpi / 72 * 1.7  # one row of entries, in pixels
        height = int(row * (len(runs) + len(styles)) + 4 * _ROW_GAP)  # room for one entry a row
        fig = Figure(figsize=(self.width / self.dpi, height / self.dpi), dpi=self.dpi)
        canvas = FigureCanvasAgg(fig)
        renderer = canvas.get_renderer()
        run_handles = [Line2D([], [], color=run_color(index), lw=2.0, alpha=0.45 if faint else 1.0)
                       for index, _label, faint in runs]
        top = 1.0 - _ROW_GAP / height
        bottom = self._legend(fig, renderer, run_handles, [label for _i, label, _f in runs], top)
        style_handles = [Line2D([], [], **STYLES[name][1]) for name in styles]
        if styles:
            self._legend(fig, renderer, style_handles, [STYLES[name][0] for name in styles],
                         bottom - _ROW_GAP / height, color="#333333")
        canvas.draw()
        self.figure = fig
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        used = np.nonzero((rgb < 250).any(axis=(1, 2)))[0]
        end = min(height, int(used.max()) + 1 + _ROW_GAP) if len(used) else 0
        return rgb[:end].copy()

    def _legend(self, fig, renderer, handles: list, labels: list, top: float, color: str = "black") -> float:
        """A legend in as few rows as fit the width (rows filled evenly), centred, its top at
        ``top`` (a fraction of the figure's height); returns its bottom."""
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
        box = legend.get_window_extent(renderer)
        return box.y0 / fig.bbox.height

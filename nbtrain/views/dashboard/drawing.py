"""The dashboard's picture: the session's runs turned into the plot's PNG.

A redraw takes a snapshot of the runs (copies of their rows, taken under the session's
lock) and has it drawn by a kept ``nbtrain.views.liveplot.LiveFigure``: in the helper
process (``nbtrain.views.plotprocess``) when it runs, so matplotlib's Python stays off the
training process's GIL; in this process (a figure kept here) while the helper is still
starting, after it failed, or with ``plot_process=False``.
"""

from __future__ import annotations

from typing import Sequence

from ..liveplot import LiveFigure
from ..plotprocess import PlotProcess, PlotProcessError, PlotProcessNotReady
from .session import RunRecord


def snapshot(records: Sequence[RunRecord], current: RunRecord | None) -> list[tuple]:
    """The runs as ``LiveFigure.render`` takes them (copies of their rows; call under the session's lock)."""
    return [
        (r.index, r.label, r.config, list(r.steps), list(r.epochs), r.steps_per_epoch, r is current)
        for r in records
    ]


class Drawing:
    """Draws snapshots into PNG bytes through the plot helper process, or in this process.

    ``plotter`` is the helper (None when plots are drawn here); ``note`` says why they are
    drawn here; ``helper_cpu`` is the helper's CPU seconds for the last picture (0 when
    this process drew it).
    """

    def __init__(self, plot_process: bool = True) -> None:
        self.plotter: PlotProcess | None = None
        self.note = ""
        self.helper_cpu = 0.0
        self._figure: LiveFigure | None = None  # for drawing in this process, kept between redraws
        if not plot_process:
            self.note = "plot_process=False"
            return
        try:  # starts now, so it has imported matplotlib by the time Train is pressed
            self.plotter = PlotProcess()
        except PlotProcessError as exc:
            self.note = str(exc)

    @property
    def in_helper(self) -> bool:
        """True while the helper process draws (False: this process does)."""
        return self.plotter is not None and self.plotter.alive

    def png(self, runs: list[tuple], figsize: tuple[float, float], in_process: bool = False) -> bytes:
        """``runs`` (a ``snapshot``) drawn as PNG bytes; the helper's failure switches to in-process."""
        png = None
        self.helper_cpu = 0.0
        if self.plotter is not None and not in_process:
            try:
                png = self.plotter.render(runs, figsize=figsize)
                self.helper_cpu = self.plotter.cpu_seconds[-1]
            except PlotProcessNotReady:  # still importing matplotlib: draw here this once
                pass
            except PlotProcessError as exc:  # draw here from now on
                self.note = str(exc)
                self.plotter.close()
                self.plotter = None
        if png is not None:
            return png
        if self._figure is None or self._figure.figsize != (float(figsize[0]), float(figsize[1])):
            self._figure = LiveFigure(figsize)
        return self._figure.render(runs)

    def close(self) -> None:
        """End the helper process, if one runs."""
        plotter, self.plotter = self.plotter, None
        if plotter is not None:
            plotter.close()


__all__ = ["Drawing", "snapshot"]

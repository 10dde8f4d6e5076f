"""The dashboard's live plots: the runs of a session drawn into one PNG.

``LiveFigure(figsize, dpi).render(snapshot)`` draws three panels side by side (losses,
pre-clip gradient norms with the clip line, LR with the scheduler's cuts) of every run in
``snapshot``, and under them the key (which colour is which run, what each kind of line
means; ``nbtrain.views.livekey``), as PNG bytes, with matplotlib's Agg canvas (no pyplot:
no figure is left open). At the default size (``FIGSIZE`` at ``DPI``: 1000 pixels wide,
the most the dashboard shows it at) its texts are 9 pt or larger. The clipped share and
the LR cuts it shows are ``nbtrain.measures.clip_fraction`` and ``nbtrain.measures.lr_cuts``.
``render_png(snapshot)`` is one render of a fresh figure.

A ``LiveFigure`` is kept between redraws (the plot helper keeps one), and a redraw redoes
only what changed: a run's curves are thinned again only when it has new rows; its lines,
cut marks and annotations are made again only when what is drawn changes in kind (a run
added, finished or removed, its first epoch, a new LR cut), and otherwise get their new
data (``set_data``; the axes' limits follow with ``relim``/``autoscale_view``, the log
scales stay); each panel (``nbtrain.views.livepanel``) redraws its axes, ticks and the
earlier runs' lines only when its limits or the earlier runs change (the x axis spans the
epochs the configs ask for from the first redraw, the y limits are rounded out to values a
growing run crosses only now and then: ``nbtrain.views.liveaxes``); the key's strips are
drawn again only when their entries change. ``work_since`` names what a render redid
(for benchmarks). A kept figure's PNG is the same bytes as
a fresh figure's for the same snapshot (the tests hold it to that), so the helper process
and in-process drawing agree.

It runs in the dashboard's plot helper process (``nbtrain.views.plotprocess``), or in the
kernel when the helper cannot run, so this module imports only the standard library,
``nbtrain.measures`` and, when drawing, matplotlib and numpy: never torch or ipywidgets.
"""
from __future__ import annotations

import math
import struct
import zlib
from typing import Any, NamedTuple

from .. import measures

__all__ = ["DPI", "FIGSIZE", "PLOT_FIELDS", "Curves", "LiveFigure", "plot_settings", "png_bytes", "render_png",
           "run_curves"]

FIGSIZE = (10.0, 2.9)  # inches: the three panels (the key adds its rows under them)
DPI = 100

_MAX_POINTS = 600  # step curves are thinned to about this many points per run and panel
PLOT_FIELDS = ("grad_clip", "scheduler", "epochs")  # the config fields the plots use


def plot_settings(config: Any) -> dict:
    """The config fields the plots use, as a plain dict (what the helper process receives)."""
    return {key: _cfg(config, key) for key in PLOT_FIELDS}


def _cfg(config: Any, key: str):
    """A config field from a TrainConfig or from the small dict the helper process receives
    (``epochs`` may be missing from a dict: None)."""
    if isinstance(config, dict):
        return config.get(key) if key == "epochs" else config[key]
    return getattr(config, key)


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


class Curves(NamedTuple):
    """One run's drawable data: thinned curves (None: not drawn) and the clip line's note.

    ``kind`` is ``(index, label, faint, has loss, has train, has val, has grad, clip,
    has lr, cuts)``: what decides which artists the run needs and their fixed properties;
    two renders whose runs have the same kinds differ only in line data and clip notes.
    """

    kind: tuple
    loss: tuple | None  # (x, y) of the per-step training loss (current run only)
    train: tuple | None  # epoch train losses (current run only)
    val: tuple | None  # epoch validation losses
    grad: tuple | None  # pre-clip gradient norms
    clip_label: str | None  # the clip line's note (current, clipped run only)
    lr: tuple | None  # learning rate per step
    planned: int | None = None  # the epochs the run's config asks for (None: not known)


def run_curves(index: int, label: str, config: Any, steps: list, epochs: list, spe: int,
               is_current: bool) -> Curves:
    """A snapshot item's curves. x is in epochs counted from 0: a step at position k of
    epoch e sits at ``e + (k + 1) / steps_per_epoch``, the epoch's means and validation loss
    in the middle of its span, at ``e + 0.5``; step curves are thinned to a few hundred points (a
    panel is about 300 pixels wide): losses averaged, gradient norms keeping each bucket's
    extremes, the LR keeping its changes. The clipped share and the LR cuts are
    ``measures.clip_fraction`` and ``measures.lr_cuts``."""
    spe = spe or (epochs[0]["n_steps"] if epochs else 1) or 1
    xs = [(r["step"] + 1) / spe for r in steps]
    faint = not is_current
    loss = _thin_mean(xs, [r["loss"] for r in steps]) if steps and not faint else None
    ex = [r["epoch"] + 0.5 for r in epochs]
    train = (ex, [r["train_loss"] for r in epochs]) if epochs and not faint else None
    val = (ex, [r["val_loss"] for r in epochs]) if epochs else None
    grad = _thin_envelope(xs, [r["grad_norm"] for r in steps]) if steps else None
    clip = _cfg(config, "grad_clip") if steps and not faint else None
    clip_label = None
    if clip is not None:
        share, _ = measures.clip_fraction(clipped=[r["clipped"] for r in steps])
        clip_label = f"clip {clip:g}: {share:.0%} of steps clipped"
    lr = _thin_last(xs, [r["lr"] for r in steps]) if steps else None
    cuts = ()
    if epochs and measures.uses_plateau(config):  # the plateau scheduler's cuts
        cuts = tuple(measures.lr_cuts([r["lr"] for r in epochs], [r["epoch"] for r in epochs],
                                      start=epochs[0].get("lr_start")))
    kind = (index, label, faint, loss is not None, train is not None, val is not None,
            grad is not None, clip, lr is not None, cuts)
    return Curves(kind, loss, train, val, grad, clip_label, lr, _cfg(config, "epochs"))


class LiveFigure:
    """The live plots, kept between renders so that a redraw redoes only what changed.

    ``render(snapshot)`` takes the runs as ``render_png`` does and returns PNG bytes that do
    not depend on what was rendered before (``render_png``, a fresh figure, gives the same
    bytes). Rows are only ever appended to a run's lists: a run's curves are reused while
    its lists and their lengths stay the same. ``rebuilds`` counts the times the runs'
    artists were made afresh; ``frame_draws`` the panels' frames drawn (see
    ``nbtrain.views.livepanel``).
    """

    def __init__(self, figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI) -> None:
        self.figsize = (float(figsize[0]), float(figsize[1]))
        self.dpi = dpi
        self.rebuilds = 0
        self._panel_sets: dict[bool, list] = {}  # has data -> the three panels for it
        self._panels: list = []  # the set in use
        self._has_data: bool | None = None  # what the panels in use are set up for (None: none yet)
        self._empty_png: bytes | None = None  # "no run yet" never changes
        self._kinds: list | None = None
        self._curves: dict[int, tuple] = {}  # run index -> (rows it was made from, version, Curves)
        self._versions = 0
        self._key = None  # the key under the panels (made on the first render with runs)

    @property
    def frame_draws(self) -> int:
        return sum(p.frame_draws for panels in self._panel_sets.values() for p in panels)

    def work_counts(self) -> tuple[int, int]:
        """``(rebuilds, frame_draws)`` now; ``work_since`` names what a render redid."""
        return self.rebuilds, self.frame_draws

    def work_since(self, counts: tuple[int, int]) -> str:
        """What was redone since ``work_counts`` gave ``counts``: "rebuild" (the runs' artists
        made afresh), "frame" (a panel's frame drawn) or "steady" (line data and the live artists)."""
        if self.rebuilds != counts[0]:
            return "rebuild"
        return "frame" if self.frame_draws != counts[1] else "steady"

    @property
    def key(self):
        """The key under the panels (``nbtrain.views.livekey.Key``; None before a render with runs)."""
        return self._key

    @property
    def axes(self) -> list:
        """The three panels' axes (losses, gradient norms, LR), as the last render left them."""
        return [p.ax for p in self._panels]

    def render(self, snapshot: list[tuple]) -> bytes:
        """Draw the runs of ``snapshot`` (see ``render_png``) as PNG bytes."""
        from .livepanel import Panel

        items = [item for item in snapshot if item[3] or item[4]]
        if bool(items) != self._has_data:
            if bool(items) not in self._panel_sets:
                self._panel_sets[bool(items)] = [Panel(i, self.figsize, self.dpi, bool(items)) for i in range(3)]
            self._panels = self._panel_sets[bool(items)]
            self._has_data, self._kinds = bool(items), None
        if not items:
            self._curves = {}
            if self._empty_png is None:
                self._empty_png = self._png((), [])
            return self._empty_png
        cached = [self._run_curves(item) for item in items]
        self._curves = {item[0]: entry for item, entry in zip(items, cached)}
        curves = [entry[2] for entry in cached]
        n_static = next((i for i, c in enumerate(curves) if not c.kind[2]), len(curves))  # finished runs first
        kinds = [c.kind for c in curves] + [n_static]
        if kinds != self._kinds:
            self.rebuilds += 1
            for panel in self._panels:
                panel.make(curves, n_static)
            self._kinds = kinds
        else:
            for panel in self._panels:
                panel.update(curves)
        static_key = tuple(entry[1] for entry in cached[:n_static])
        return self._png(static_key, curves)

    def _run_curves(self, item: tuple) -> tuple:
        """``(rows, version, run_curves(*item))``, reused while the item's rows are the same."""
        index, label, config, steps, epochs, spe, is_current = item
        rows = (steps, len(steps), epochs, len(epochs), label, spe, is_current, tuple(plot_settings(config).items()))
        cached = self._curves.get(index)
        if cached is not None and all(a is b if isinstance(a, list) else a == b for a, b in zip(cached[0], rows)):
            return cached
        self._versions += 1
        return rows, self._versions, run_curves(*item)

    def _png(self, static_key: tuple, curves: list) -> bytes:
        """The panels side by side and the key under them (when there are runs), as PNG bytes."""
        import numpy as np

        from .livekey import Key

        strips = [(p, p.draw(static_key)) for p in self._panels]
        height, width = strips[0][1].shape[0], sum(a.shape[1] for _, a in strips)
        key = None
        if curves:
            if self._key is None:
                self._key = Key(width, self.dpi)
            key = self._key.pixels(curves)
        image = np.empty((height + (0 if key is None else key.shape[0]), width, 3), dtype=np.uint8)
        for panel, pixels in strips:
            image[:height, panel.x0 : panel.x0 + pixels.shape[1]] = pixels[..., :3]
        if key is not None:
            image[height:] = key
        return png_bytes(image)


def png_bytes(image) -> bytes:
    """An RGB image (a (height, width, 3) uint8 array) as PNG bytes: rows unfiltered, zlib
    level 1. Twice as fast as Pillow's filtered encoding, about a fifth bigger; it runs next
    to training, on every redraw."""
    import numpy as np

    height, width, _ = image.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # each row: filter type 0, then its pixels
    rows[:, 1:] = image.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


def render_png(snapshot: list[tuple], figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI) -> bytes:
    """Draw losses, pre-clip gradient norms and LR of the runs in ``snapshot`` as PNG bytes.

    Each snapshot item is ``(index, label, config, steps, epochs, steps_per_epoch, is_current)``
    with ``steps`` and ``epochs`` rows as in ``nbtrain.training.history`` and ``config`` a
    ``TrainConfig`` or a dict with its ``grad_clip`` and ``scheduler``. The current run is drawn
    in full colour; the others faintly. The x axis is epochs (from 0), so runs with different
    batch sizes line up (see ``run_curves``), to the end of the epochs the configs ask for
    (``epochs``; a dict without it: the last epoch begun). Drawing is kept cheap on purpose (fixed layout and
    legend places, no minor tick labels), because it runs while training shares the CPU.
    This is one render of a fresh ``LiveFigure``; keep a ``LiveFigure`` to redraw cheaply.
    """
    return LiveFigure(figsize, dpi).render(snapshot)

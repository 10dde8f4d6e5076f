"""How responsive is the dashboard, and how much does live plotting slow training?

Measures, over alternating repetitions in one process (headless, dashboard, dashboard,
headless, ...):

* first plot: seconds from pressing Train (calling the button's click handler) to the
  first plot that shows a step of the new run (target < 1 s);
* training time: the sum of the trainer's own ``epoch_time_s`` for a headless
  ``nbtrain.train`` of the same config and for the dashboard's run (target: dashboard at
  most 5% slower). Both runs include validation; neither includes building the data.
  The headless run is made in a background thread, like the dashboard's, so the two
  differ only by the live plots. ``--main-thread`` adds a headless run in the main
  thread as well: on a 2-core machine crowded by other processes, torch's two intra-op
  threads in the main thread were seen running 5-10x slower than the same training
  in a worker thread, which would otherwise be mistaken for a speed-up by the dashboard.
* CPU: process CPU seconds from the start to the end of training, for both. On a shared
  machine this is the steadier measure of what live plotting costs.
* helper CPU per redraw: the plot helper process's own CPU time for each redraw of the
  measured dashboard runs (``PlotProcess.cpu_seconds``: process time around updating its
  kept figure and encoding the PNG; target < 50 ms), next to the kernel's CPU per redraw
  (the thread time of sending the rows and reading back the PNG).

It runs the reference experiment (``--epochs`` of ROUND2, default 1); ``--synthetic``
uses a stand-in of the same shape instead: an MLP 48 -> 560 -> 560 -> 560 -> 3 (about
660K parameters) on 6,000 random training windows, batch 8 (750 optimizer steps per epoch).

    PYTHONPATH=. python benchmarks/bench_widgets.py --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch
from torch import nn

import nbtrain
from nbtrain import Dashboard, presets
from nbtrain.training.callbacks import Callback


def _synthetic():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8000, 48, generator=g)
    w = torch.randn(48, 3, generator=g) / 7
    y = torch.tanh(x @ w) + 0.3 * torch.randn(8000, 3, generator=g)
    train, val = (x[:6000], y[:6000]), (x[6000:], y[6000:])

    def model():
        return nn.Sequential(
            nn.Linear(48, 560), nn.GELU(), nn.Linear(560, 560), nn.GELU(),
            nn.Linear(560, 560), nn.GELU(), nn.Linear(560, 3),
        )

    return model, train, val


def _fit_seconds(run) -> float:
    return sum(r["epoch_time_s"] for r in run.history.epochs)


class CpuClock(Callback):
    """Process CPU seconds from the start to the end of training (all threads: the
    trainer's, torch's, and the dashboard's refresher). Wall time on a shared machine
    swings by several times within a minute; CPU time is steadier."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_begin(self, trainer) -> None:
        self._t0 = time.process_time()

    def on_train_end(self, trainer) -> None:
        self.seconds.append(time.process_time() - self._t0)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="pairs of (headless, dashboard) runs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="train a synthetic stand-in, not the reference")
    parser.add_argument("--main-thread", action="store_true", help="also time a headless run in the main thread")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--dashboard-threads", default="auto",
                        help="the dashboard's threads argument: auto (default), none, or a number")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    torch.set_num_threads(args.threads)

    config = presets.ROUND2.replace(epochs=args.epochs)
    if not args.synthetic:
        what = f"reference experiment, ROUND2, {args.epochs} epoch(s)"
        model_fn, train_data, val_data = None, None, None
    else:
        what = f"SYNTHETIC stand-in: 48-560-560-560-3 MLP, 6,000 samples, ROUND2, {args.epochs} epoch(s)"
        model_fn, train_data, val_data = _synthetic()

    def headless_here(clock: CpuClock | None = None) -> float:
        model = None
        if model_fn is not None:
            torch.manual_seed(config.seed)
            model = model_fn()
        run = nbtrain.train(config, model, train_data, val_data, sink=None, callbacks=[clock] if clock else [])
        return _fit_seconds(run)

    def headless() -> float:  # in a worker thread, like the dashboard's run
        result = []
        worker = threading.Thread(target=lambda: result.append(headless_here(headless_cpu)))
        worker.start()
        worker.join()
        return result[0]

    headless_cpu, live_cpu = CpuClock(), CpuClock()
    dash_threads = {"auto": "auto", "none": None}.get(args.dashboard_threads.lower())
    if dash_threads is None and args.dashboard_threads.lower() != "none":
        dash_threads = int(args.dashboard_threads)
    board = Dashboard(model_fn, train_data, val_data, callbacks=[live_cpu], threads=dash_threads)
    board.load(config)

    def live() -> tuple[float, float, int]:
        board.clear_history()
        board.train_button.click()  # what a click in the browser runs
        if not board.wait(3600):
            raise RuntimeError("the dashboard run did not finish")
        run = board.runs[-1]
        timing = board.timings[-1]
        return _fit_seconds(run), timing["first_plot_s"], timing["redraws"]

    print(f"bench_widgets: {what}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; warming up...")
    headless()  # first-run costs (imports, allocator, data) out of the way
    live()
    plotter = board.drawing.plotter  # the plot helper (None: plots drawn in this process)
    helper_from = len(plotter.cpu_seconds) if plotter is not None else 0
    m = _alternate(args.reps, headless, live, headless_here if args.main_thread else None)
    m.update({"cpu_plain": headless_cpu.seconds[1:], "cpu_dash": live_cpu.seconds[1:],  # without the warm-up runs
              "render": board.render_seconds[1:], "helper": _helper_cpu(board, plotter, helper_from)})
    _print_table(args.reps, m)


def _alternate(reps: int, headless, live, main_thread=None) -> dict:
    """``reps`` pairs of headless and dashboard runs, alternating which goes first."""
    m = {"plain": [], "dash": [], "first": [], "redraws": [], "main_thread": []}
    for i in range(reps):
        order = ("headless", "live") if i % 2 == 0 else ("live", "headless")
        for kind in order + (("main",) if main_thread else ()):
            if kind == "headless":
                m["plain"].append(headless())
            elif kind == "main":
                m["main_thread"].append(main_thread())
            else:
                for key, value in zip(("dash", "first", "redraws"), live()):
                    m[key].append(value)
        extra = f", headless in the main thread {m['main_thread'][-1]:.2f} s" if main_thread else ""
        print(f"  rep {i + 1}: headless {m['plain'][-1]:.2f} s, dashboard {m['dash'][-1]:.2f} s, "
              f"first plot {m['first'][-1]:.2f} s, {m['redraws'][-1]} redraws{extra}", flush=True)
    return m


def _helper_cpu(board, plotter, start: int) -> list[float]:
    """The helper's CPU seconds per redraw since ``start`` (empty, with a note, when the
    plots were drawn in this process)."""
    if plotter is None or board.drawing.plotter is not plotter:
        print(f"note: no helper CPU per redraw; the plots were drawn in this process ({board.plot_note})")
        return []
    return plotter.cpu_seconds[start:]


def _print_table(reps: int, m: dict) -> None:
    """The measurements as a Markdown table: median, min and max of each, and its target."""

    def row(name, values, target="", scale=1.0):
        values = values or [float("nan")]
        return name, scale * statistics.median(values), scale * min(values), scale * max(values), target

    slowdown = [d / p - 1 for d, p in zip(m["dash"], m["plain"])]
    cpu_slowdown = [d / p - 1 for d, p in zip(m["cpu_dash"], m["cpu_plain"])]
    rows = [
        row("first plot after Train (s)", m["first"], "< 1 s"),
        row("training, headless in a thread (s)", m["plain"]),
        row("training, dashboard (s)", m["dash"]),
        row("slowdown from live plots (%)", slowdown, "<= 5 %", 100),
        row("CPU, headless (s)", m["cpu_plain"]),
        row("CPU, dashboard (s)", m["cpu_dash"]),
        row("extra CPU from live plots (%)", cpu_slowdown, "<= 5 %", 100),
        row("redraws per run", m["redraws"]),
        *([row("training, headless in the main thread (s)", m["main_thread"])] if m["main_thread"] else []),
        row("CPU per redraw in this process (s)", m["render"]),
        row("helper CPU per redraw (ms)", m["helper"], "< 50 ms", 1000),
    ]
    print()
    when = time.strftime("%Y-%m-%d %H:%M")
    print(f"| measure | median | min | max | target |  ({reps} alternating pairs; {when})")
    print("|---|---|---|---|---|")
    for name, med, lo, hi, target in rows:
        print(f"| {name} | {med:.3g} | {lo:.3g} | {hi:.3g} | {target} |")

if __name__ == "__main__":
    main()

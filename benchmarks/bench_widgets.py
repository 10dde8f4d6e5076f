"""How responsive is the dashboard, and how much does live plotting slow training?

Measures, over alternating repetitions in one process (headless, dashboard, dashboard,
headless, ...), for each torch thread count in ``--threads`` (default ``1,all``: one
thread, then every core; the counts alternate within each repetition too):

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
  machine this is the steadier measure of what live plotting costs in the kernel.
* helper CPU per redraw: the plot helper process's own CPU time for each redraw of the
  measured dashboard runs (``PlotProcess.cpu_seconds``: process time around updating its
  kept figure and encoding the PNG; target < 50 ms), next to the kernel's CPU per redraw
  (the thread time of sending the rows and reading back the PNG), the redraws per second,
  and the helper's busy share: its CPU over the dashboard run's training time.

The dashboard is made with ``--dashboard-threads`` (default ``none``: torch keeps the
thread count being measured, so "all cores" means the plots compete with torch for every
core; ``auto`` is the dashboard's default). It runs the reference experiment
(``--epochs`` of ROUND2, default 1); ``--synthetic`` uses a stand-in of the same shape
instead: an MLP 48 -> 560 -> 560 -> 560 -> 3 (about 660K parameters) on 6,000 random
training windows, batch 8 (750 optimizer steps per epoch). It measures whichever nbtrain
is first on the path, so the same script compares two checkouts:

    PYTHONPATH=. python benchmarks/bench_widgets.py --reps 5 --threads 1,all

``--renders-only STEPS`` times only the kept figure's redraws (no training, no dashboard):
a made-up 7-epoch run growing STEPS steps per redraw beside a finished one, on a figure
warmed up as the helper's is. Both modes also give the CPU per redraw by what it redid
(``LiveFigure.work_since``): rebuild (the runs' artists made afresh: a run's first step or
epoch, a cut), frame (a panel's limits changed) or steady (new line data only).
"""

from __future__ import annotations

import argparse
import os
import platform
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
    parser.add_argument("--reps", type=int, default=3, help="pairs of (headless, dashboard) runs per thread count")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="train a synthetic stand-in, not the reference")
    parser.add_argument("--main-thread", action="store_true", help="also time a headless run in the main thread")
    parser.add_argument("--threads", default="1,all",
                        help="torch CPU thread counts, comma-separated ('all': every core); default 1,all")
    parser.add_argument("--dashboard-threads", default="none",
                        help="the dashboard's threads argument: none (default: torch's setting), auto, or a number")
    parser.add_argument("--renders-only", type=int, metavar="STEPS", default=0,
                        help="only time a kept figure's redraws of a made-up 7-epoch run beside an earlier one, "
                             "one redraw every STEPS steps (no training)")
    args = parser.parse_args()
    args.thread_counts = [os.cpu_count() or 1 if t.strip() == "all" else int(t) for t in args.threads.split(",")]
    return args


class Bench:
    """The runs of one benchmark: a headless and a dashboard run of ``config``, measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config = presets.ROUND2.replace(epochs=args.epochs)
        if args.synthetic:
            self.what = f"SYNTHETIC stand-in: 48-560-560-560-3 MLP, 6,000 samples, ROUND2, {args.epochs} epoch(s)"
            self.model_fn, self.train_data, self.val_data = _synthetic()
        else:
            self.what = f"reference experiment, ROUND2, {args.epochs} epoch(s)"
            self.model_fn, self.train_data, self.val_data = None, None, None
        self.headless_cpu, self.live_cpu = CpuClock(), CpuClock()
        dash_threads = {"auto": "auto", "none": None}.get(args.dashboard_threads.lower(), args.dashboard_threads)
        self.board = Dashboard(self.model_fn, self.train_data, self.val_data, callbacks=[self.live_cpu],
                               threads=dash_threads if dash_threads in ("auto", None) else int(dash_threads))
        self.board.load(self.config)

    def headless_here(self, clock: CpuClock | None = None) -> float:
        model = None
        if self.model_fn is not None:
            torch.manual_seed(self.config.seed)
            model = self.model_fn()
        run = nbtrain.train(self.config, model, self.train_data, self.val_data, sink=None,
                            callbacks=[clock] if clock else [])
        return _fit_seconds(run)

    def headless(self) -> float:  # in a worker thread, like the dashboard's run
        result = []
        worker = threading.Thread(target=lambda: result.append(self.headless_here(self.headless_cpu)))
        worker.start()
        worker.join()
        return result[0]

    def live(self) -> dict:
        board = self.board
        board.clear_history()
        plotter = board.drawing.plotter
        helper_from = len(plotter.cpu_seconds) if plotter is not None else 0
        kernel_from = len(board.render_seconds)
        board.train_button.click()  # what a click in the browser runs
        if not board.wait(3600):
            raise RuntimeError("the dashboard run did not finish")
        run, timing = board.runs[-1], board.timings[-1]
        fit = _fit_seconds(run)
        helper = list(plotter.cpu_seconds[helper_from:]) if plotter is not None and plotter.alive else []
        work = list(plotter.work[helper_from:]) if helper else []
        if plotter is None or not plotter.alive:
            print(f"note: no helper CPU per redraw; the plots were drawn in this process ({board.plot_note})")
        return {"dash": fit, "first": timing["first_plot_s"], "redraws": timing["redraws"],
                "rate": timing["redraws"] / fit, "helper": helper, "helper_share": sum(helper) / fit, "work": work,
                "render": list(board.render_seconds[kernel_from:])}


_WORK = {"rebuild": "artists made afresh", "frame": "a panel's frame drawn", "steady": "line data only"}


def renders_only(every: int, epochs: int = 7, steps_per_epoch: int = 500) -> None:
    """CPU per redraw of a kept ``LiveFigure`` warmed up as the helper's is (what the helper
    does), on made-up rows: a finished run and a current one growing ``every`` steps at a time."""
    import math
    import random

    from nbtrain.views.plotprocess import warm_figure

    rng = random.Random(0)

    def rows(lr, clip, growth):
        steps = [{"epoch": i // steps_per_epoch, "step": i, "loss": 0.5 / (1 + i / 300) + 0.05 * rng.random(),
                  "grad_norm": (1 + growth * i / steps_per_epoch) * (0.7 + 0.6 * rng.random()), "lr": lr,
                  "clipped": False, "clip_factor": 1.0} for i in range(epochs * steps_per_epoch)]
        for r in steps:
            r["clipped"] = r["grad_norm"] > clip
        return steps, [{"epoch": e, "train_loss": 0.4 / (1 + e), "val_loss": 0.6 + 0.05 * math.sin(e),
                        "lr_start": lr, "lr": lr, "n_steps": steps_per_epoch} for e in range(epochs)]

    done = (1, "#1 lr 2e-5, clip 2, patience 5", presets.ROUND1, *rows(2e-5, 2.0, 2.0), steps_per_epoch, False)
    steps, epoch_rows = rows(1e-5, 3.0, 1.0)
    figure, costs, kinds = warm_figure(), [], []
    for k in range(1, len(steps) + 1, every):
        snap = [done, (2, "#2 lr 1e-5, clip 3, patience 3", presets.ROUND2, steps[:k],
                       epoch_rows[: k // steps_per_epoch], steps_per_epoch, True)]
        before = figure.work_counts()
        t0 = time.process_time()
        figure.render(snap)
        costs.append(time.process_time() - t0)
        kinds.append(figure.work_since(before))
    print(f"kept LiveFigure {figure.figsize} at {figure.dpi} dpi, nbtrain from {os.path.dirname(nbtrain.__file__)}: "
          f"{len(costs)} redraws, one every {every} steps; CPU per redraw median {1000 * statistics.median(costs):.1f} ms,"
          f" mean {1000 * statistics.mean(costs):.1f} ms, max {1000 * max(costs):.1f} ms")
    for kind in _WORK:
        mine = [c for c, k in zip(costs, kinds) if k == kind]
        if mine:
            print(f"  {kind} ({_WORK[kind]}): {len(mine)} redraws, median {1000 * statistics.median(mine):.1f} ms, "
                  f"max {1000 * max(mine):.1f} ms")


def main() -> None:
    args = _parse_args()
    if args.renders_only:
        return renders_only(args.renders_only)
    bench = Bench(args)
    print(f"bench_widgets: {bench.what}; nbtrain from {os.path.dirname(nbtrain.__file__)}")
    print(f"torch {torch.__version__}, thread counts {args.thread_counts}, dashboard threads "
          f"{args.dashboard_threads}; warming up...")
    results = {}
    for threads in args.thread_counts:
        torch.set_num_threads(threads)
        bench.headless()  # first-run costs (imports, allocator, data) out of the way
        bench.live()
        results[threads] = {"plain": [], "cpu_plain": [], "cpu_dash": [], "main_thread": []}
    for i in range(args.reps):
        for threads in args.thread_counts:
            torch.set_num_threads(threads)
            _pair(i, threads, bench, results[threads], args.main_thread)
    for threads in args.thread_counts:
        _print_table(args, threads, results[threads])


def _pair(i: int, threads: int, bench: Bench, m: dict, main_thread: bool) -> None:
    """One headless and one dashboard run, alternating which goes first."""
    order = ("headless", "live") if i % 2 == 0 else ("live", "headless")
    for kind in order:
        if kind == "headless":
            m["plain"].append(bench.headless())
            m["cpu_plain"].append(bench.headless_cpu.seconds[-1])
        else:
            for key, value in bench.live().items():
                m.setdefault(key, []).append(value)
            m["cpu_dash"].append(bench.live_cpu.seconds[-1])
    if main_thread:
        m["main_thread"].append(bench.headless_here())
    extra = f", headless in the main thread {m['main_thread'][-1]:.2f} s" if main_thread else ""
    print(f"  rep {i + 1}, {threads} thread(s): headless {m['plain'][-1]:.2f} s, dashboard {m['dash'][-1]:.2f} s, "
          f"first plot {m['first'][-1]:.2f} s, {m['redraws'][-1]} redraws{extra}", flush=True)


def _print_table(args: argparse.Namespace, threads: int, m: dict) -> None:
    """The measurements as a Markdown table: median, min and max of each, and its target."""

    def row(name, values, target="", scale=1.0):
        values = values or [float("nan")]
        return name, scale * statistics.median(values), scale * min(values), scale * max(values), target

    flat = [x for xs in m["helper"] for x in xs]
    by_work = {}
    for xs, kinds in zip(m["helper"], m["work"]):
        for x, kind in zip(xs, kinds):
            by_work.setdefault(kind, []).append(x)
    rows = [
        row("first plot after Train (s)", m["first"], "< 1 s"),
        row("training, headless in a thread (s)", m["plain"]),
        row("training, dashboard (s)", m["dash"]),
        row("slowdown from live plots (%)", [d / p - 1 for d, p in zip(m["dash"], m["plain"])], "<= 5 %", 100),
        row("CPU, headless (s)", m["cpu_plain"]),
        row("CPU, dashboard (s)", m["cpu_dash"]),
        row("extra CPU from live plots (%)", [d / p - 1 for d, p in zip(m["cpu_dash"], m["cpu_plain"])], "", 100),
        row("redraws per run", m["redraws"]),
        row("redraws per second of training", m["rate"]),
        *([row("training, headless in the main thread (s)", m["main_thread"])] if m["main_thread"] else []),
        row("kernel CPU per redraw (ms)", [x for xs in m["render"] for x in xs], "", 1000),
        row("helper CPU per redraw (ms)", flat, "< 50 ms", 1000),
        *[row(f"  of which {kind} redraws ({len(by_work[kind])}): {_WORK[kind]} (ms)", by_work[kind], "", 1000)
          for kind in _WORK if kind in by_work],
        row("helper busy (% of training time)", m["helper_share"], "", 100),
    ]
    print()
    print(f"{args.reps} alternating pairs, {threads} torch thread(s), dashboard threads {args.dashboard_threads}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}")
    print("| measure | median | min | max | target |")
    print("|---|---|---|---|---|")
    for name, med, lo, hi, target in rows:
        print(f"| {name} | {med:.3g} | {lo:.3g} | {hi:.3g} | {target} |")


if __name__ == "__main__":
    main()

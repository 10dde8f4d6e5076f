"""The reference experiment per seed: round-1 symptoms and wall time of a 7-epoch ROUND1 run;
with ``--speed``, the run's speed on today's default against PyTorch's default Adam.

    python benchmarks/bench_reference.py [--seeds 0 1 2 3 4] [--data-seed 0] [--n-val 1000] [--threads 1]
    python benchmarks/bench_reference.py --speed 5 [--profile] --threads 1

For each training seed it trains ``presets.ROUND1`` on the data set ``--data-seed`` (default 0,
the reference data), checks the write-up's three symptoms with ``nbtrain.round1_symptoms`` and
prints one row: validation loss per epoch, gradient-norm medians and maxima, clip fractions,
best epoch, later epochs worse than the best, LR cuts, which symptoms hold, and the run's wall
time (the budget is 90 s on a 2-core machine). Wall time on a shared machine is noisy; it is
reported, never asserted. Growth and clip figures are ``nbtrain.measures``' definitions (for a
7-epoch run the late window is epochs 5-6).

``--n-val N`` scores the same runs on a validation split of N windows instead of the reference
1,000 (``LorenzTask.n_val``): the trajectory is extended, so the training windows, the
normalizers, the model's initialisation and the shuffling are unchanged. The README's figures:

    python benchmarks/bench_reference.py --threads 1                # data_seed 0, 1,000 validation windows
    python benchmarks/bench_reference.py --threads 1 --n-val 4000   # scored on 4,000 validation windows
    python benchmarks/bench_reference.py --threads 1 --data-seed 1  # another data set
    python benchmarks/bench_reference.py --threads 1 --data-seed 2

The table goes to its own section of benchmarks/RESULTS.md (one per data set and split).

``--speed N`` times N pairs of whole 7-epoch ROUND1 runs, each
``nbtrain.train`` from the data's generation to the last record, one on PyTorch's default
(single-tensor) Adam (``fused_adam=False``: the path before fused Adam became the default) and
one on the default, in alternating order, and reports both runs' wall and CPU seconds per pair
and the median of the pairs' ratios; ``--profile`` adds where one run's time goes, phase by
phase, for each. The speed section of RESULTS.md is replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

import nbtrain
from nbtrain import measures, presets
from nbtrain.diagnosis.symptoms import round1_symptoms
from nbtrain.reference.data import REFERENCE_TASK, make_reference_data
from nbtrain.reference.models import ReferenceModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import machine_line, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
GROUPS = {"1": ("1a", "1b", "1c", "1d"), "2": ("2a", "2b"), "3": ("3",)}  # growth, validation stall, flat LR


def train_round1(seed: int, data_seed: int, n_val: int, fused_adam: bool = True) -> nbtrain.Run:
    """ROUND1 with training seed ``seed`` on data set ``data_seed`` with ``n_val`` validation windows."""
    config = presets.ROUND1.replace(seed=seed, data_seed=data_seed, fused_adam=fused_adam)
    if n_val == REFERENCE_TASK.n_val:
        return nbtrain.train(config, sink=None)  # the reference experiment itself
    task = dataclasses.replace(REFERENCE_TASK, n_val=n_val)
    data = make_reference_data(data_seed, normalize=config.normalize, task=task)
    torch.manual_seed(config.seed)  # as train() does before it builds the reference model
    model = ReferenceModel()
    return nbtrain.train(config, model, data.train, data.val, sink=None)


def row(seed: int, run: nbtrain.Run, wall: float) -> tuple[str, dict[str, bool]]:
    """The table row of one run, and which symptom groups hold."""
    steps = run.history.to_dataframe("step")
    norms = {int(e): g["grad_norm"].tolist() for e, g in steps.groupby("epoch")}
    g50, gmax = measures.growth_from_steps(norms, "p50"), measures.growth_from_steps(norms, "max")
    late = list(g50.late_epochs)
    clip0, _ = measures.clip_fraction(clipped=steps.loc[steps.epoch == 0, "clipped"].tolist())
    clip_late, _ = measures.clip_fraction(clipped=steps.loc[steps.epoch.isin(late), "clipped"].tolist())
    table = round1_symptoms(run.history, late_epochs=tuple(late)).set_index("id")
    holds = {group: bool(table.loc[list(ids), "holds"].all()) for group, ids in GROUPS.items()}
    vals = " ".join(f"{e['val_loss']:.4f}" for e in run.history.epochs)
    which = " ".join(g if ok else "-" for g, ok in holds.items())
    text = (
        f"| {seed} | {vals} | {g50.first:.2f} / {g50.late:.2f} | {gmax.first:.2f} / {gmax.late:.2f} "
        f"({gmax.ratio:.1f}x) | {clip0:.3f} / {clip_late:.3f} | {int(table.loc['2a', 'measured'])} | "
        f"{int(table.loc['2b', 'measured'])} | {int(table.loc['3', 'measured'])} | {which} | "
        f"{'pass' if all(holds.values()) else 'FAIL'} | {wall:.1f} |"
    )
    return text, holds


KERNELS = (("PyTorch's default Adam (fused_adam=False)", False), ("default (fused Adam)", True))


def timed_run(fused: bool, seed: int, data_seed: int) -> tuple[nbtrain.Run, float, float]:
    """One whole ROUND1 run (``nbtrain.train``: data, model, optimizer, 7 epochs): run, wall s, CPU s."""
    wall, cpu = time.perf_counter(), time.process_time()
    run = train_round1(seed, data_seed, REFERENCE_TASK.n_val, fused_adam=fused)
    return run, time.perf_counter() - wall, time.process_time() - cpu


def _timeless(run: nbtrain.Run) -> tuple[list, list]:
    return run.history.steps, [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in run.history.epochs]


def speed(args: argparse.Namespace) -> None:
    """``--speed N`` pairs in alternating order, then (``--profile``) one profiled run of each."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch.optim's lazy import of dynamo, outside the clock
    seed = args.seeds[0]
    lines = ["| pair | order | default Adam: wall s / CPU s | fused Adam: wall s / CPU s | ratio, wall | ratio, CPU |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines))
    runs: dict[bool, list] = {False: [], True: []}
    ratios: list[tuple[float, float]] = []
    old_ms: list[float] = []  # the old path's CPU ms per optimizer step, per pair
    for i in range(args.speed):
        order = (False, True) if i % 2 == 0 else (True, False)
        timed = {fused: timed_run(fused, seed, args.data_seed) for fused in order}
        (old, w0, c0), (new, w1, c1) = timed[False], timed[True]
        runs[False].append(old)
        runs[True].append(new)
        ratios.append((w0 / w1, c0 / c1))
        old_ms.append(c0 / len(old.history.steps) * 1e3)
        first = "default first" if order[0] is False else "fused first"
        lines.append(f"| {i} | {first} | {w0:.1f} / {c0:.1f} | {w1:.1f} / {c1:.1f} | {w0 / w1:.2f} | {c0 / c1:.2f} |")
        print(lines[-1], flush=True)
    notes = _speed_notes(runs, ratios) if ratios else []
    if args.profile:
        notes += ["", *profile_table(seed, args.data_seed)]
    if ratios:
        notes += ["", *floor_lines(seed, args.data_seed, statistics.median(old_ms))]
    print("\n".join(notes))
    title = "# Reference experiment: speed of a 7-epoch run"
    body = [title, "", *_stamp(), f"Training seed {seed}, data_seed {args.data_seed}; each run is "
            "`nbtrain.train(ROUND1)` from the data's generation to the last record, in one process.", ""]
    write_section(RESULTS, title, "\n".join(body + (lines if ratios else []) + notes + [""]))


def _speed_notes(runs: dict[bool, list], ratios: list[tuple[float, float]]) -> list[str]:
    """Median ratios, whether each kernel repeats its run exactly, and how far the two kernels' runs differ."""
    same = {fused: all(_timeless(r) == _timeless(rs[0]) for r in rs) for fused, rs in runs.items()}
    old, new = runs[False][0].history.epochs, runs[True][0].history.epochs
    val_diff = max(abs(a["val_loss"] - b["val_loss"]) / abs(a["val_loss"]) for a, b in zip(old, new))
    holds = {fused: all(bool(round1_symptoms(r.history).holds.all()) for r in rs) for fused, rs in runs.items()}
    return [
        "",
        f"Median of {len(ratios)} pairs: default Adam / fused Adam = {statistics.median(r[0] for r in ratios):.2f}x "
        f"wall, {statistics.median(r[1] for r in ratios):.2f}x CPU (a ratio above 1: the fused default is faster).",
        f"Each kernel repeats its run exactly (steps and epoch rows): default {same[False]}, fused {same[True]}. "
        f"The kernels' validation losses differ by at most {val_diff:.1e} relative over the 7 epochs; "
        f"round-1 symptoms hold on every run: default {holds[False]}, fused {holds[True]}.",
    ]


FLOOR_OPS = ("aten::addmm", "aten::mm", "aten::_fused_adam_")  # the products and Adam's fused kernel


def floor_lines(seed: int, data_seed: int, default_ms: float, epochs: int = 1) -> list[str]:
    """What the matrix products and the fused Adam kernel alone cost per step, against half of the old step.

    One ``epochs``-epoch ROUND1 run on the default path under ``torch.profiler``; the self CPU time of
    the forward's and backward's matrix products (``addmm``, ``mm``) and of Adam's fused kernel is
    summed and divided by the steps. Any fp32 implementation of this step at batch 8 runs these
    products and reads and writes every parameter, gradient and moment once, so when this floor
    is above half the old step, a 2x speed-up needs a change of the arithmetic (precision, batch
    size, model), not of the loop.
    """
    from torch.profiler import ProfilerActivity, profile

    config = presets.ROUND1.replace(seed=seed, data_seed=data_seed, epochs=epochs)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run = nbtrain.train(config, sink=None)
    n = len(run.history.steps)
    own = {e.key: e.self_cpu_time_total / 1e3 / n for e in prof.key_averages() if e.key in FLOOR_OPS}
    floor = sum(own.values())
    parts = ", ".join(f"{k.split('::')[1]} {v:.3f}" for k, v in own.items())
    verdict = ("above: 2x is out of reach of any loop change on this machine" if floor > default_ms / 2
               else "below: 2x is not ruled out by the kernels")
    return [f"Kernel floor (one {epochs}-epoch run on the default path under torch.profiler, self CPU ms per step): "
            f"{parts}; together {floor:.3f} ms. Half of the old path's step (median of the pairs above, "
            f"{default_ms:.3f} ms) is {default_ms / 2:.3f} ms: the floor is {verdict}."]


class Clocks:
    """Wall and CPU seconds spent in each phase of a run, taken by wrapping the functions the trainer calls."""

    PHASES = (  # (phase, module or class, attribute)
        ("set-up: data, model, optimizer", "Trainer", "__init__"),
        ("forward + backward", "step", "accumulated_backward"),
        ("pre-clip norm and the step's host read", "step", "measure"),
        ("clipping (scales the gradients on clipped steps)", "step", "clip_gradients"),
        ("Adam step", "Precision", "step"),
        ("validation", "trainer", "validation_loss"),
        ("epoch rows (records)", "trainer", "epoch_row"),
    )

    def __init__(self) -> None:
        from nbtrain.training import batches, precision, step, trainer

        self.owners = {"Trainer": trainer.Trainer, "step": step, "Precision": precision.Precision,
                       "trainer": trainer, "Batches": batches.Batches}
        self.seconds = {name: [0.0, 0.0] for name, _, _ in self.PHASES}
        self.seconds["training batches"] = [0.0, 0.0]
        self.saved: list[tuple[object, str, object]] = []

    def _add(self, name: str, wall: float, cpu: float) -> None:
        self.seconds[name][0] += time.perf_counter() - wall
        self.seconds[name][1] += time.process_time() - cpu

    def _timed(self, name: str, fn):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(name, wall, cpu)
        return timed

    def _timed_batches(self, fn):
        def epoch(batches, *args):
            it = fn(batches, *args)
            while True:
                wall, cpu = time.perf_counter(), time.process_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    if batches.shuffle:  # the training batches (validation is timed as a whole)
                        self._add("training batches", wall, cpu)
                yield item
        return epoch

    def __enter__(self) -> "Clocks":
        for name, owner, attr in self.PHASES:
            target = self.owners[owner]
            self.saved.append((target, attr, getattr(target, attr)))
            setattr(target, attr, self._timed(name, getattr(target, attr)))
        target = self.owners["Batches"]
        self.saved.append((target, "epoch", target.epoch))
        target.epoch = self._timed_batches(target.epoch)
        return self

    def __exit__(self, *exc) -> None:
        for target, attr, original in reversed(self.saved):
            setattr(target, attr, original)


def _clock_cost() -> float:
    """CPU seconds one wrapped call adds (two wall and two CPU clock reads and the call)."""
    clocks = Clocks()
    clocks.seconds["probe"] = [0.0, 0.0]
    probe = clocks._timed("probe", lambda: None)
    cpu = time.process_time()
    for _ in range(5000):
        probe()
    return (time.process_time() - cpu) / 5000


def profile_table(seed: int, data_seed: int) -> list[str]:
    """Where one whole run's time goes, phase by phase, on each Adam kernel (ms per optimizer step)."""
    columns = []
    for _, fused in KERNELS:
        with Clocks() as clocks:
            run, wall, cpu = timed_run(fused, seed, data_seed)
        columns.append((clocks.seconds, wall, cpu, len(run.history.steps)))
    lines = ["| phase | " + " | ".join(f"{label}: ms per step, CPU (wall)" for label, _ in KERNELS) + " |",
             "|---|---|---|"]
    for name in columns[0][0]:
        per = 1 if name.startswith("set-up") else None  # the set-up happens once: ms per run
        cells = [f"{t[name][1] / (per or n) * 1e3:.3f} ({t[name][0] / (per or n) * 1e3:.3f})" for t, _, _, n in columns]
        lines.append(f"| {name}{' (ms per run)' if per else ''} | " + " | ".join(cells) + " |")
    rest = [f"{(c - sum(v[1] for v in t.values())) / n * 1e3:.3f} ({(w - sum(v[0] for v in t.values())) / n * 1e3:.3f})"
            for t, w, c, n in columns]
    lines.append("| the rest: loop, zero_grad, step rows, history, scheduler | " + " | ".join(rest) + " |")
    lines.append("| **whole run** (s) | " + " | ".join(f"**{c:.1f} ({w:.1f})**" for _, w, c, _ in columns) + " |")
    cost = _clock_cost() * 5 * 1e6  # five wrapped calls per step: batches, backward, norm, clipping, Adam
    return [f"One profiled run of each. The clocks wrap the functions the trainer calls and add about {cost:.0f} us "
            "of CPU per step, inside the phases.", "", *lines]


def symptoms(args: argparse.Namespace) -> None:
    """The per-seed table (printed, and written to its section of RESULTS.md)."""
    title = (f"# Reference experiment: round-1 symptoms per seed (data_seed {args.data_seed}, "
             f"{args.n_val} validation windows)")
    lines = ["| seed | val loss, epochs 0-6 | median norm ep0 / ep5-6 | max ep0 / ep5-6 (ratio) | clip ep0 / ep5-6 | "
             "best epoch | later worse | LR cuts | holds (1 growth, 2 val, 3 LR) | symptoms | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    print(f"torch {torch.__version__}, {args.threads} threads; ROUND1, 7 epochs, data_seed {args.data_seed}, "
          f"{args.n_val} validation windows\n\n" + "\n".join(lines))
    counts = {group: 0 for group in GROUPS}
    passed = 0
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = train_round1(seed, args.data_seed, args.n_val)
        text, holds = row(seed, run, time.perf_counter() - t0)
        print(text, flush=True)
        lines.append(text)
        passed += all(holds.values())
        for group, ok in holds.items():
            counts[group] += ok
    n = len(args.seeds)
    verdict = (f"symptoms reproduced on {passed} of {n} seeds; gradient growth (1a-1d) held on {counts['1']}, "
               f"the validation criterion (2a, 2b) on {counts['2']}, the flat LR (3) on {counts['3']}")
    print("\n" + verdict)
    write_section(RESULTS, title, "\n".join([title, "", *_stamp(), "", *lines, "", verdict, ""]))


def _stamp() -> list[str]:
    command = "python benchmarks/bench_reference.py " + " ".join(sys.argv[1:])
    return [f"Command: `{command.strip()}`  ", f"Machine: {machine_line()}  ",
            f"Versions: torch {torch.__version__}, nbtrain {nbtrain.__version__}; ROUND1 "
            f"(Adam: {'fused' if presets.ROUND1.fused_adam else 'default'} kernel), 7 epochs  "]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds")
    parser.add_argument("--data-seed", type=int, default=0, help="the data set (default 0: the reference data)")
    parser.add_argument("--n-val", type=int, default=REFERENCE_TASK.n_val,
                        help=f"validation windows (default {REFERENCE_TASK.n_val}, the reference split)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--speed", type=int, default=0, metavar="N",
                        help="time N alternating pairs of runs (default Adam vs fused) instead of the table")
    parser.add_argument("--profile", action="store_true", help="with --speed: one profiled run of each, by phase")
    args = parser.parse_args()
    if args.data_seed < 0 or args.n_val < 1 or args.speed < 0:
        parser.error(f"--data-seed and --speed must be >= 0 and --n-val >= 1, "
                     f"got {args.data_seed}, {args.speed} and {args.n_val}")
    torch.set_num_threads(args.threads)
    if args.speed or args.profile:
        speed(args)
    else:
        symptoms(args)


if __name__ == "__main__":
    main()

"""Overhead of ``nbtrain.Recorder`` per optimizer step, against the bare loop it records.

    python benchmarks/bench_recorder.py [--pairs 15] [--steps 200] [--threads 1] [--batch-size 8]

Both loops train the reference-sized MLP (``nbtrain.ReferenceModel``, 48 -> 403 x 5 -> 3,
672K parameters) with Adam at batch 8 on random data: zero_grad, forward, MSE, backward,
clip, ``optimizer.step()``. The bare loop calls ``torch.nn.utils.clip_grad_norm_``; the
recorded loop calls ``rec.clip_grad_norm_`` and ``rec.step(loss, optimizer)`` (one host sync
per step: the loss, the norm and the clip coefficient). Each pair runs ``--steps`` steps of
each loop, in alternating order; the table gives the median time per step, the median of
the per-pair ratios (recorded / bare) and the median per-pair difference in microseconds.

The second table times the recorder's calls alone on fixed gradients (no forward, backward
or optimizer step): ``rec.clip_grad_norm_`` + ``rec.step`` against ``clip_grad_norm_``,
which is the overhead without the noise of the training step around it; and the time
``close()`` takes to write the run folder of ``--steps`` steps. Wall time on a shared
machine is noisy: read the ratios and the medians, within one run of this script.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import nbtrain
from nbtrain.reference.models import ReferenceModel

CLIP = 2.0


class Loop:
    """One training loop (its own model, optimizer and data order); ``recorder`` None: bare."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, recorder: nbtrain.Recorder | None) -> None:
        torch.manual_seed(0)
        self.model = ReferenceModel()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=2e-5)
        self.x, self.y, self.batch, self.rec = x, y, batch, recorder
        self.i = 0

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        params = list(self.model.parameters())
        clip = self.rec.clip_grad_norm_ if self.rec is not None else torch.nn.utils.clip_grad_norm_
        n = len(self.x)
        start = time.perf_counter()
        for _ in range(steps):
            lo = (self.i * self.batch) % (n - self.batch)
            self.i += 1
            self.opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(self.model(self.x[lo:lo + self.batch]), self.y[lo:lo + self.batch])
            loss.backward()
            clip(params, CLIP)
            self.opt.step()
            if self.rec is not None:
                self.rec.step(loss, self.opt)
        return (time.perf_counter() - start) / steps


def loop_pairs(args: argparse.Namespace, out: Path) -> dict:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4000, 48, generator=g), torch.randn(4000, 3, generator=g)
    bare = Loop(x, y, args.batch_size, None)
    rec = nbtrain.Recorder(out / "loop", sink=None)
    recorded = Loop(x, y, args.batch_size, rec)
    bare.run(20), recorded.run(20)  # warm-up
    times: dict[str, list[float]] = {"bare": [], "recorded": []}
    for pair in range(args.pairs):
        order = (("bare", bare), ("recorded", recorded)) if pair % 2 == 0 else (("recorded", recorded), ("bare", bare))
        for name, loop in order:
            times[name].append(loop.run(args.steps))
    rec.close()
    return times


def calls_alone(args: argparse.Namespace, out: Path) -> dict:
    """The recorder's calls on fixed gradients vs torch's clip_grad_norm_ alone."""
    torch.manual_seed(0)
    model = ReferenceModel()
    opt = torch.optim.Adam(model.parameters(), lr=2e-5)
    loss = torch.nn.functional.mse_loss(model(torch.randn(args.batch_size, 48)), torch.randn(args.batch_size, 3))
    loss.backward()
    params = list(model.parameters())
    loss = loss.detach()
    rec = nbtrain.Recorder(out / "calls", sink=None)
    n = args.steps * 5

    def bare() -> float:
        start = time.perf_counter()
        for _ in range(n):
            torch.nn.utils.clip_grad_norm_(params, 1e9)
        return (time.perf_counter() - start) / n

    def recorded() -> float:
        start = time.perf_counter()
        for _ in range(n):
            rec.clip_grad_norm_(params, 1e9)
            rec.step(loss, opt)
        return (time.perf_counter() - start) / n

    bare(), recorded()
    times: dict[str, list[float]] = {"bare": [], "recorded": []}
    for pair in range(args.pairs):
        for name, fn in ((("bare", bare), ("recorded", recorded)) if pair % 2 == 0
                         else (("recorded", recorded), ("bare", bare))):
            times[name].append(fn())
    times["close_steps"] = len(rec.runlog.steps)
    start = time.perf_counter()
    rec.close()
    times["close_s"] = time.perf_counter() - start
    return times


def _row(label: str, times: dict) -> str:
    bare, recorded = times["bare"], times["recorded"]
    ratios = [r / b for r, b in zip(recorded, bare)]
    diffs = [(r - b) * 1e6 for r, b in zip(recorded, bare)]
    return (f"| {label} | {statistics.median(bare) * 1e6:.1f} | {statistics.median(recorded) * 1e6:.1f} | "
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | {statistics.median(diffs):+.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15, help="alternating pairs of measurements (default 15)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per measurement (default 200)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        loops = loop_pairs(args, Path(tmp))
        calls = calls_alone(args, Path(tmp))
    print(f"# Recorder overhead\n\nCommand: `python benchmarks/bench_recorder.py {' '.join(argv or sys.argv[1:])}`  ")
    print(f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s); Python "
          f"{platform.python_version()}, torch {torch.__version__}, nbtrain {nbtrain.__version__}  ")
    print(f"ReferenceModel, Adam, batch {args.batch_size}; median of {args.pairs} alternating pairs of "
          f"{args.steps} steps (calls alone: {args.steps * 5} calls)\n")
    print("| what | bare us/step | recorded us/step | ratio recorded/bare (min-max) | overhead us/step |")
    print("|---|---|---|---|---|")
    print(_row("training step: clip_grad_norm_ (+ rec.step)", loops))
    print(_row("the calls alone, fixed gradients", calls))
    print(f"\nclose(): history.json + status.json of {calls['close_steps']} steps in {calls['close_s'] * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

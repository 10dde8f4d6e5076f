"""Cost of each probe at its default settings, against one ROUND1 epoch of the reference experiment.

    python benchmarks/bench_probes.py [--reps 5] [--threads 1]

Each repetition trains one fresh ROUND1 epoch with the ``LayerStats`` callback on (the
time spent inside the callback's hooks is clocked separately, so its overhead does not
drown in the machine's load), then times every probe once on the trained model. Each
probe's cost is taken as a share of the same repetition's epoch, so slow and fast
stretches of a shared machine cancel; the table shows medians over the repetitions.
The target is 5% of an epoch, except for the LR range test: since issue 18 its defaults
sweep 300 steps (about 250 before it stops here) with a probe batch, because a 20-step
sweep's suggestion was wrong on the reference experiment, and its target is 1.5 epochs;
whether its suggestion is right is measured by ``benchmarks/bench_lr_range.py``.

The table is printed and goes to its own section of benchmarks/RESULTS.md (replaced in place),
with the command, the machine, the versions, the date and a sentence on what it shows.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

import nbtrain
from nbtrain import LayerStats, Trainer, estimate_sharpness, gradient_noise_scale, lr_range_test, presets
from nbtrain.measures import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import machine_line, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Probes: cost against one ROUND1 epoch"
TARGET = 0.05
TARGETS = {"lr_range_test": 1.5}  # share of an epoch, where a probe's target is not TARGET
OPTIONS = {"estimate_sharpness + Adam"}  # two power iterations: an option, reported but not held to a target
SHARPNESS_BATCH = 16  # examples in the fixed batch the sharpness is measured on (2 training batches)


class ClockedLayerStats(LayerStats):
    """LayerStats that adds up the wall time spent in its own hooks."""

    seconds = 0.0

    def on_step_end(self, trainer, row):
        t0 = time.perf_counter()
        super().on_step_end(trainer, row)
        self.seconds += time.perf_counter() - t0

    def on_epoch_end(self, trainer, row):
        t0 = time.perf_counter()
        super().on_epoch_end(trainer, row)
        self.seconds += time.perf_counter() - t0


def _median(values: list[float]) -> float:
    return percentile(values, 50)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _repetition(cfg) -> tuple[float, int, dict[str, tuple[str, float]]]:
    """One fresh ROUND1 epoch with ``LayerStats`` on, then each probe once on the trained model.

    Returns the epoch's seconds less those spent in the callback's hooks, the epoch's steps,
    and per probe its settings and seconds.
    """
    stats = ClockedLayerStats()
    trainer = Trainer(cfg, sink=None, callbacks=[stats])
    epoch = _timed(trainer.fit)
    model, opt = trainer.model, trainer.optimizer
    data = trainer.reference_data.train
    x, y = data.tensors
    batch = (x[:SHARPNESS_BATCH], y[:SHARPNESS_BATCH])
    runs = {
        "LayerStats (in epoch)": ("per-step hooks, defaults", stats.seconds),
        "lr_range_test": (
            "defaults: 300 steps of 8 + probe of 64, clip 2",
            _timed(lambda: lr_range_test(model, data, batch_size=cfg.batch_size, grad_clip=cfg.grad_clip)),
        ),
        "gradient_noise_scale": (
            "defaults: 3 pairs of 1 x 256 + 2 x 8",
            _timed(lambda: gradient_noise_scale(model, data)),
        ),
        "estimate_sharpness": (
            f"defaults: at most 12 HVPs (tol 1e-5) on {SHARPNESS_BATCH} examples",
            _timed(lambda: estimate_sharpness(model, batch)),
        ),
        "estimate_sharpness + Adam": (
            f"raw + preconditioned: 2 x at most 12 HVPs on {SHARPNESS_BATCH}",
            _timed(lambda: estimate_sharpness(model, batch, optimizer=opt)),
        ),
    }
    return epoch - stats.seconds, trainer.steps_per_epoch, runs


def _report(seconds: dict, shares: dict, settings: dict, args: argparse.Namespace, argv: list[str]) -> bool:
    """Print the table, write it to its section of RESULTS.md; whether every default probe met its target."""
    print()
    print(f"{'probe':<26} {'settings':<44} {'median s':>9} {'vs epoch':>9} {'target':>7}")
    print(f"{'epoch':<26} {settings['epoch']:<44} {_median(seconds['epoch']):>9.3f}")
    lines = ["| probe | settings | median s | share of the epoch: median (range) | target | |",
             "|---|---|---:|---:|---:|---|",
             f"| ROUND1 epoch (less LayerStats' hooks) | {settings['epoch']} | {_median(seconds['epoch']):.3f} | | | |"]
    ok, parts, over = True, [], []
    for name in shares:
        share, target = _median(shares[name]), TARGETS.get(name, TARGET)
        good = share <= target
        word = "ok" if good else "over"
        print(f"{name:<26} {settings[name]:<44} {_median(seconds[name]):>9.3f} {share:>9.2%} {target:>7.0%}  {word}")
        lines.append(f"| `{name}` | {settings[name]} | {_median(seconds[name]):.3f} | {share:.2%} "
                     f"({min(shares[name]):.1%}-{max(shares[name]):.1%}) | {target:.0%} | "
                     f"{word}{' (an option)' if name in OPTIONS else ''} |")
        parts.append(f"`{name}` {share:.2%}" if share < 0.5 else f"`{name}` {share:.2f} epochs")
        if name not in OPTIONS:
            ok &= good
            over += [] if good else [name]
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), {args.reps} repetitions")
    verdict = ("every default probe within its target" if ok else f"over target: {', '.join(over)}")
    sentence = (f"Medians over {args.reps} repetitions, each probe against the same repetition's epoch "
                f"({_median(seconds['epoch']):.2f} s): {'; '.join(parts)}; {verdict} ({TARGET:.0%} of an epoch, "
                f"{TARGETS['lr_range_test']:g} epochs for the LR range test; {', '.join(sorted(OPTIONS))}: an option, "
                "not held to a target).")
    print(sentence)
    stamp = [f"Command: `{' '.join(['python benchmarks/bench_probes.py', *argv]).strip()}`  ",
             f"Machine: {machine_line()}  ",
             f"Versions: Python {platform.python_version()}, torch {torch.__version__}, nbtrain {nbtrain.__version__}; "
             f"ROUND1 (Adam: {'fused' if presets.ROUND1.fused_adam else 'default'} kernel), 1 epoch per repetition  "]
    write_section(RESULTS, TITLE, "\n".join([TITLE, "", *stamp, "", *lines, "", sentence, ""]))
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions (the table shows medians)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a shared machine fair)")
    args = ap.parse_args(argv)
    if args.reps < 1 or args.threads < 1:
        ap.error(f"--reps and --threads must be >= 1, got {args.reps} and {args.threads}")
    torch.set_num_threads(args.threads)
    cfg = presets.ROUND1.replace(epochs=1)

    seconds: dict[str, list[float]] = {}
    shares: dict[str, list[float]] = {}
    settings: dict[str, str] = {}
    for rep in range(args.reps):
        epoch, steps, runs = _repetition(cfg)
        seconds.setdefault("epoch", []).append(epoch)
        settings["epoch"] = f"ROUND1: {steps} steps of {cfg.batch_size} + validation"
        for name, (setting, secs) in runs.items():
            settings[name] = setting
            seconds.setdefault(name, []).append(secs)
            shares.setdefault(name, []).append(secs / epoch)
        print(f"repetition {rep + 1}/{args.reps}: epoch {epoch:.2f} s", flush=True)
    return 0 if _report(seconds, shares, settings, args, argv) else 1


if __name__ == "__main__":
    raise SystemExit(main())

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
"""

from __future__ import annotations

import argparse
import time

import torch

from nbtrain import LayerStats, Trainer, estimate_sharpness, gradient_noise_scale, lr_range_test, presets
from nbtrain.measures import percentile

TARGET = 0.05
TARGETS = {"lr_range_test": 1.5}  # share of an epoch, where a probe's target is not TARGET
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions (the table shows medians)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a shared machine fair)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = presets.ROUND1.replace(epochs=1)

    seconds: dict[str, list[float]] = {}
    shares: dict[str, list[float]] = {}
    settings: dict[str, str] = {}
    steps = 0
    for rep in range(args.reps):
        stats = ClockedLayerStats()
        trainer = Trainer(cfg, sink=None, callbacks=[stats])
        epoch = _timed(trainer.fit)
        steps = trainer.steps_per_epoch
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
                f"defaults: 12 HVPs on {SHARPNESS_BATCH} examples",
                _timed(lambda: estimate_sharpness(model, batch)),
            ),
            "estimate_sharpness + Adam": (
                f"raw + preconditioned: 2 x 12 HVPs on {SHARPNESS_BATCH}",
                _timed(lambda: estimate_sharpness(model, batch, optimizer=opt)),
            ),
        }
        seconds.setdefault("epoch", []).append(epoch - stats.seconds)
        settings["epoch"] = f"ROUND1: {steps} steps of {cfg.batch_size} + validation"
        for name, (setting, secs) in runs.items():
            settings[name] = setting
            seconds.setdefault(name, []).append(secs)
            shares.setdefault(name, []).append(secs / (epoch - stats.seconds))
        print(f"repetition {rep + 1}/{args.reps}: epoch {epoch - stats.seconds:.2f} s", flush=True)

    print()
    print(f"{'probe':<26} {'settings':<44} {'median s':>9} {'vs epoch':>9} {'target':>7}")
    print(f"{'epoch':<26} {settings['epoch']:<44} {_median(seconds['epoch']):>9.3f}")
    ok = True
    for name in shares:
        share = _median(shares[name])
        target = TARGETS.get(name, TARGET)
        good = share <= target
        if name != "estimate_sharpness + Adam":  # two power iterations: an option, reported but not a default
            ok &= good
        print(
            f"{name:<26} {settings[name]:<44} {_median(seconds[name]):>9.3f} {share:>9.1%} {target:>7.0%}  "
            f"{'ok' if good else 'over'}"
        )
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), {args.reps} repetitions")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

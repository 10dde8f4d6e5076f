"""Does the LR range test's suggestion land where short trainings are best? And what does it cost?

    python benchmarks/bench_lr_range.py [--threads 1] [--seeds 0,1] [--epochs 3] [--quick] [--no-small]

For the reference experiment (``presets.ROUND1``: batch 8, clip 2.0, plateau scheduler) it runs
``lr_range_test`` at its defaults on freshly initialised models (one per training seed, with
ROUND1's batch size and clip) and at the old defaults (20 steps, no probe batch), then trains
ROUND1 for ``--epochs`` epochs at a log grid of LRs (half decades from 1e-5 to 1e-2, the LRs
issue 18 quoted, and the suggestion), once per seed, through ``nbtrain.check_lr_suggestion``,
and prints the table: LR -> best validation loss per seed, their mean, the suggestion and
the best, the verdict, and the cost of the sweep against one training epoch. ``--quick``
trains only the check's default grid around the suggestion (x1/9 .. x9, 5 LRs).

Then the same for two small regression tasks of ``tests/tasks.py`` (a 4-16-1 tanh MLP on
``make_regression``; 1,024 examples at batch 8, and 2,048 at batch 16; Adam, no clipping, no
scheduler) with the check's default grid; ``--no-small`` skips them. The lead runs this once;
it took 11 minutes on the shared 2-core machine, one thread (the reference grid: 12 LRs x 2
seeds x 3 epochs; the small tasks: under a minute).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from nbtrain import Trainer, TrainConfig, check_lr_suggestion, lr_range_test, presets
from nbtrain.measures import percentile

REFERENCE_GRID = [1e-5, 2e-5, 3.16e-5, 1e-4, 2.3e-4, 3.16e-4, 8.1e-4, 1e-3, 2.3e-3, 3.16e-3, 1e-2]
OLD_DEFAULTS = {"num_steps": 20, "smoothing": 0.8, "probe_size": 0}  # lr_range_test before issue 18


def _sweep(model, data, **kwargs) -> tuple:
    t = time.perf_counter()
    result = lr_range_test(model, data, **kwargs)
    return result, time.perf_counter() - t


def reference(seeds: list[int], epochs: int, quick: bool) -> None:
    cfg = presets.ROUND1
    print(f"## Reference experiment: {cfg.name} (lr {cfg.lr:g}, batch {cfg.batch_size}, clip {cfg.grad_clip})\n")
    suggestions = []
    for seed in seeds:
        trainer = Trainer(cfg.replace(epochs=1, seed=seed), sink=None)
        data = trainer.reference_data.train
        t = time.perf_counter()
        trainer.fit()
        epoch_s = time.perf_counter() - t
        fresh = Trainer(cfg.replace(epochs=1, seed=seed), sink=None).model
        kw = {"batch_size": cfg.batch_size, "grad_clip": cfg.grad_clip}
        new, new_s = _sweep(fresh, data, **kw)
        old, old_s = _sweep(fresh, data, **kw, **OLD_DEFAULTS)
        suggestions.append(new.suggestion)
        print(f"model seed {seed}: suggestion {new.suggestion:.3g} ({len(new.lrs)} steps, {new_s:.1f} s = "
              f"{new_s / epoch_s:.2f} of a training epoch of {epoch_s:.1f} s); old defaults: {old.suggestion:.3g} "
              f"({len(old.lrs)} steps, {old_s:.2f} s)")
        print(f"  {new}")
    suggestion = percentile(suggestions, 50)
    lrs = None if quick else REFERENCE_GRID
    print(f"\nchecking the median suggestion {suggestion:.3g} with {epochs}-epoch trainings, seeds {seeds}:\n")
    check = check_lr_suggestion(cfg, suggestion, lrs, epochs=epochs, seeds=seeds, sink=_progress)
    print(check.to_markdown())


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def small(seeds: list[int], epochs: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tasks import make_mlp, make_regression

    for n, batch in ((1024, 8), (2048, 16)):
        train = TensorDataset(*make_regression(n))
        val = TensorDataset(*make_regression(512, seed=1))
        cfg = TrainConfig(lr=1e-3, grad_clip=None, scheduler="none", batch_size=batch, device="cpu", name="small")
        print(f"\n## Small task: make_regression({n}), batch {batch}, {epochs} epochs\n")
        for seed in seeds:
            result, secs = _sweep(make_mlp(seed=seed), train, batch_size=batch)
            old, _ = _sweep(make_mlp(seed=seed), train, batch_size=batch, **OLD_DEFAULTS)
            print(f"model seed {seed}: suggestion {result.suggestion:.3g} ({secs:.2f} s); old defaults: "
                  f"{old.suggestion:.3g}")
            check = check_lr_suggestion(cfg, result, epochs=epochs, seeds=seeds, model_fn=lambda s: make_mlp(seed=s),
                                        train_data=train, val_data=val)
            print(check.to_markdown())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a shared machine fair)")
    ap.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each short training")
    ap.add_argument("--quick", action="store_true", help="reference: only the check's default grid (5 LRs)")
    ap.add_argument("--no-small", action="store_true", help="skip the small tasks")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    t = time.perf_counter()
    reference(seeds, args.epochs, args.quick)
    if not args.no_small:
        small(seeds, args.epochs)
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), {time.perf_counter() - t:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

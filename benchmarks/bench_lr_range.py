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
scheduler) with the check's default grid; ``--no-small`` skips them. With ``--threads 1`` on
the shared 2-core machine it took 2 min 8 s of wall time (2026-12-01, load average about 1.5;
the reference grid's 24 trainings of 3 epochs 109 s of it, the small tasks' 40 about 4 s).

The tables are printed and go to their own section of benchmarks/RESULTS.md (replaced in
place), with the command, the machine, the versions, the date and a sentence on what they show.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain import Trainer, TrainConfig, check_lr_suggestion, lr_range_test, presets
from nbtrain.measures import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import machine_line, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# LR range test: its suggestion against short trainings, and its cost"
REFERENCE_GRID = [1e-5, 2e-5, 3.16e-5, 1e-4, 2.3e-4, 3.16e-4, 8.1e-4, 1e-3, 2.3e-3, 3.16e-3, 1e-2]
OLD_DEFAULTS = {"num_steps": 20, "smoothing": 0.8, "probe_size": 0}  # lr_range_test before issue 18
SWEEP_HEAD = ["| model seed | suggestion | steps | sweep s | sweep / training epoch | old defaults: suggestion | "
              "steps | s |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]


def _sweep(model, data, **kwargs) -> tuple:
    t = time.perf_counter()
    result = lr_range_test(model, data, **kwargs)
    return result, time.perf_counter() - t


def reference(seeds: list[int], epochs: int, quick: bool) -> tuple[list[str], dict]:
    """The reference experiment's sweeps and check: the section's lines, and figures for its sentence."""
    cfg = presets.ROUND1
    heading = f"## Reference experiment: {cfg.name} (lr {cfg.lr:g}, batch {cfg.batch_size}, clip {cfg.grad_clip})"
    print(heading + "\n")
    lines, suggestions, olds, costs = [heading, "", *SWEEP_HEAD], [], [], []
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
        olds.append(old.suggestion)
        costs.append(new_s / epoch_s)
        print(f"model seed {seed}: suggestion {new.suggestion:.3g} ({len(new.lrs)} steps, {new_s:.1f} s = "
              f"{new_s / epoch_s:.2f} of a training epoch of {epoch_s:.1f} s); old defaults: {old.suggestion:.3g} "
              f"({len(old.lrs)} steps, {old_s:.2f} s)")
        print(f"  {new}")
        lines.append(f"| {seed} | {new.suggestion:.3g} | {len(new.lrs)} | {new_s:.1f} | {new_s / epoch_s:.2f} "
                     f"(epoch {epoch_s:.1f} s) | {old.suggestion:.3g} | {len(old.lrs)} | {old_s:.2f} |")
    suggestion = percentile(suggestions, 50)
    lrs = None if quick else REFERENCE_GRID
    intro = f"checking the median suggestion {suggestion:.3g} with {epochs}-epoch trainings, seeds {seeds}:"
    print(f"\n{intro}\n")
    check = check_lr_suggestion(cfg, suggestion, lrs, epochs=epochs, seeds=seeds, sink=_progress)
    print(check.to_markdown())
    lines += ["", intro[0].upper() + intro[1:], "", check.to_markdown().rstrip("\n")]
    return lines, {"check": check, "seeds": seeds, "suggestions": suggestions, "olds": olds, "costs": costs}


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def small(seeds: list[int], epochs: int) -> tuple[list[str], list]:
    """The small tasks' sweeps and checks: the section's lines, and the checks (one per model seed and task)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tasks import make_mlp, make_regression

    lines, checks = [], []
    for n, batch in ((1024, 8), (2048, 16)):
        train = TensorDataset(*make_regression(n))
        val = TensorDataset(*make_regression(512, seed=1))
        cfg = TrainConfig(lr=1e-3, grad_clip=None, scheduler="none", batch_size=batch, device="cpu", name="small")
        heading = f"## Small task: make_regression({n}), batch {batch}, {epochs} epochs"
        print(f"\n{heading}\n")
        lines += ["", heading]
        tables: dict[float, int] = {}  # suggestion -> the model seed whose check table shows it
        for seed in seeds:
            result, secs = _sweep(make_mlp(seed=seed), train, batch_size=batch)
            old, _ = _sweep(make_mlp(seed=seed), train, batch_size=batch, **OLD_DEFAULTS)
            print(f"model seed {seed}: suggestion {result.suggestion:.3g} ({secs:.2f} s); old defaults: "
                  f"{old.suggestion:.3g}")
            check = check_lr_suggestion(cfg, result, epochs=epochs, seeds=seeds, model_fn=lambda s: make_mlp(seed=s),
                                        train_data=train, val_data=val)
            print(check.to_markdown())
            checks.append(check)
            said = (f"Model seed {seed}: suggestion {result.suggestion:.3g} (sweep {secs:.2f} s; old defaults: "
                    f"{old.suggestion:.3g}), checked with {epochs}-epoch trainings")
            if result.suggestion in tables:  # the checks train from the training seeds: the same LRs, the same runs
                lines += ["", f"{said}: the same suggestion as model seed {tables[result.suggestion]}'s, "
                          f"so the same trainings and table ({check.verdict()})."]
            else:
                tables[result.suggestion] = seed
                lines += ["", said + ":", "", check.to_markdown().rstrip("\n")]
    return lines, checks


def _span(values: list[float], fmt: str) -> str:
    """``a`` when all values print alike, else ``a to b``."""
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low} to {high}"


def _sentence(ref: dict, checks: list) -> str:
    """What the section shows, from its numbers."""
    check = ref["check"]
    text = (f"On the reference experiment the sweep suggested {_span(ref['suggestions'], '.3g')} for model seeds "
            f"{', '.join(map(str, ref['seeds']))} (old defaults: {_span(ref['olds'], '.3g')}) and took "
            f"{_span(ref['costs'], '.2f')} times a training epoch timed just before it (not in the same moment: "
            "the machine's load does not cancel here as in the probes' table); the median suggestion "
            f"{check.suggestion:.3g} {'holds' if check.holds else 'does not hold'}: the best LR tried was "
            f"{check.best_lr:.3g}, {check.factor:.2g}x away, and the suggestion's mean best validation loss "
            f"{check.loss_ratio:.2f}x the best's (allowed: {check.within:g}x away, {check.tolerance:g}x the loss).")
    if checks:
        held = sum(c.holds for c in checks)
        text += (f" On the small tasks the suggestion held for {held} of {len(checks)} model seeds' sweeps "
                 f"(suggestions {', '.join(f'{c.suggestion:.3g}' for c in checks)}; factors from the best LR tried "
                 f"{', '.join(f'{c.factor:.2g}x' for c in checks)}).")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
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
    lines, ref = reference(seeds, args.epochs, args.quick)
    checks = []
    if not args.no_small:
        more, checks = small(seeds, args.epochs)
        lines += more
    total = time.perf_counter() - t
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), {total:.0f} s in all")
    sentence = _sentence(ref, checks) + f" {total:.0f} s in all."
    print(sentence)
    stamp = [f"Command: `{' '.join(['python benchmarks/bench_lr_range.py', *argv]).strip()}`  ",
             f"Machine: {machine_line()}  ",
             f"Versions: Python {platform.python_version()}, torch {torch.__version__}, nbtrain {nbtrain.__version__}; "
             f"trainings on Adam's {'fused' if presets.ROUND1.fused_adam else 'default'} kernel, the sweeps on "
             "PyTorch's default Adam  "]
    write_section(RESULTS, TITLE, "\n".join([TITLE, "", *stamp, "", *lines, "", sentence, ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

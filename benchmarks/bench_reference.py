"""The reference experiment per seed: round-1 symptoms and wall time of a 7-epoch ROUND1 run.

    python benchmarks/bench_reference.py [--seeds 0 1 2 3 4] [--data-seed 0] [--n-val 1000] [--threads 1]

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
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

import nbtrain
from nbtrain import measures, presets
from nbtrain.diagnosis.symptoms import round1_symptoms
from nbtrain.reference.data import REFERENCE_TASK, make_reference_data
from nbtrain.reference.models import ReferenceModel

GROUPS = {"1": ("1a", "1b", "1c", "1d"), "2": ("2a", "2b"), "3": ("3",)}  # growth, validation stall, flat LR


def train_round1(seed: int, data_seed: int, n_val: int) -> nbtrain.Run:
    """ROUND1 with training seed ``seed`` on data set ``data_seed`` with ``n_val`` validation windows."""
    config = presets.ROUND1.replace(seed=seed, data_seed=data_seed)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds")
    parser.add_argument("--data-seed", type=int, default=0, help="the data set (default 0: the reference data)")
    parser.add_argument("--n-val", type=int, default=REFERENCE_TASK.n_val,
                        help=f"validation windows (default {REFERENCE_TASK.n_val}, the reference split)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    if args.data_seed < 0 or args.n_val < 1:
        parser.error(f"--data-seed must be >= 0 and --n-val >= 1, got {args.data_seed} and {args.n_val}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; ROUND1, 7 epochs, data_seed {args.data_seed}, "
          f"{args.n_val} validation windows\n")
    print("| seed | val loss, epochs 0-6 | median norm ep0 / ep5-6 | max ep0 / ep5-6 (ratio) | "
          "clip ep0 / ep5-6 | best epoch | later worse | LR cuts | holds (1 growth, 2 val, 3 LR) | symptoms | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    counts = {group: 0 for group in GROUPS}
    passed = 0
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = train_round1(seed, args.data_seed, args.n_val)
        text, holds = row(seed, run, time.perf_counter() - t0)
        print(text, flush=True)
        passed += all(holds.values())
        for group, ok in holds.items():
            counts[group] += ok
    n = len(args.seeds)
    print(f"\nsymptoms reproduced on {passed} of {n} seeds; gradient growth (1a-1d) held on {counts['1']}, "
          f"the validation criterion (2a, 2b) on {counts['2']}, the flat LR (3) on {counts['3']}")


if __name__ == "__main__":
    main()

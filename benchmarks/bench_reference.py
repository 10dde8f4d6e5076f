"""The reference experiment per seed: round-1 symptoms and wall time of a 7-epoch ROUND1 run.

    python benchmarks/bench_reference.py [--seeds 0 1 2 3 4] [--threads 2]

For each training seed (the data set stays `data_seed` 0) it trains ``presets.ROUND1``, checks
the write-up's three symptoms with ``nbtrain.symptoms.round1_symptoms`` and prints one row:
validation loss per epoch, gradient-norm medians and maxima, clip fractions, best epoch, later
epochs worse than the best, LR cuts, pass/fail and the run's wall time (the budget is 90 s on a
2-core machine). Wall time on a shared machine is noisy; it is reported, never asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import nbtrain
from nbtrain import presets
from nbtrain.diagnosis.symptoms import round1_symptoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; ROUND1, 7 epochs, data_seed 0\n")
    print("| seed | val loss, epochs 0-6 | median norm ep0 / ep5-6 | max ep0 / ep5-6 (ratio) | "
          "clip ep0 / ep5-6 | best epoch | later worse | LR cuts | symptoms | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    passed = 0
    for seed in args.seeds:
        t0 = time.perf_counter()
        run = nbtrain.train(presets.ROUND1.replace(seed=seed), sink=None)
        wall = time.perf_counter() - t0
        steps = run.history.to_dataframe("step")
        n0 = steps.loc[steps.epoch == 0, "grad_norm"].to_numpy()
        nl = steps.loc[steps.epoch.isin([5, 6]), "grad_norm"].to_numpy()
        c0 = steps.loc[steps.epoch == 0, "clipped"].mean()
        cl = steps.loc[steps.epoch.isin([5, 6]), "clipped"].mean()
        table = round1_symptoms(run.history).set_index("id")
        ok = bool(table.holds.all())
        passed += ok
        vals = " ".join(f"{e['val_loss']:.4f}" for e in run.history.epochs)
        print(
            f"| {seed} | {vals} | {np.median(n0):.2f} / {np.median(nl):.2f} | {n0.max():.2f} / {nl.max():.2f} "
            f"({nl.max() / n0.max():.1f}x) | {c0:.3f} / {cl:.3f} | {int(table.loc['2a', 'measured'])} | "
            f"{int(table.loc['2b', 'measured'])} | {int(table.loc['3', 'measured'])} | {'pass' if ok else 'FAIL'} | "
            f"{wall:.1f} |",
            flush=True,
        )
    print(f"\nsymptoms reproduced on {passed} of {len(args.seeds)} seeds")


if __name__ == "__main__":
    main()

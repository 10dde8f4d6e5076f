"""Issue 18's target: the round nbtrain proposes from a round-1 run against the write-up's round 2.

    python benchmarks/bench_next_round.py [--budget 600] [--seeds 0 1 2] [--unseen 10 11 12 13 14]
                                          [--input-seed 0] [--workers N] [--out runs/bench_next_round]
                                          [--write-results]

1. trains ``presets.ROUND1`` (7 epochs, training seed ``--input-seed``) into ``OUT/round1``
   (reused when it is there, made by the same code);
2. ``nbtrain.next_round`` on that run folder with ``--seeds`` and ``--budget`` seconds, writing
   ``OUT/next/round-2.md`` (the wall time of this step is reported, probes included);
3. trains the proposal and ``presets.ROUND2`` on the ``--unseen`` training seeds (none of them
   used by step 2) with ``nbtrain.sweep`` on the local pool, and compares their best validation
   loss within the 7 epochs, seed by seed.

Prints the proposal, the per-seed table, how many seeds the proposal won, whether every
expectation the round wrote held on its verification runs, and the time step 2 took. The target
(issue 18): the proposal wins on at least 4 of 5 unseen seeds and every expectation holds, with
a 600 s budget on the 2-core reference machine. Wall times on a shared machine are noisy: they
are reported, never asserted. ``--write-results`` puts the table in its own section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import nbtrain
from nbtrain import presets
from nbtrain.diagnosis.formatting import sig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import machine_line, write_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "# Next round vs the write-up's round 2 (bench_next_round.py)"


def _best(config: nbtrain.TrainConfig, seeds: list[int], out: Path, workers: int | None) -> dict[int, float]:
    table = nbtrain.sweep(config, None, seeds, out=out, max_workers=workers, progress=False, sink=None)
    bad = table[table["status"] != "completed"]
    if len(bad):
        failed = bad[["seed", "status", "error"]].to_dict("records")
        print(f"{config.name}: {len(bad)} run(s) did not complete: {failed}")
    return {int(r.seed): float(r.best_val_loss) for r in table.itertuples() if r.status == "completed"}


def _table(proposal: dict, round2: dict, seeds: list[int]) -> tuple[str, int]:
    lines = ["| training seed | ROUND2 best val loss | proposal best val loss | proposal / ROUND2 | proposal wins |",
             "|---|---|---|---|---|"]
    wins = 0
    for s in seeds:
        a, b = round2.get(s), proposal.get(s)
        win = a is not None and b is not None and b < a
        wins += win
        ratio = f"{b / a:.3f}" if a and b is not None else "n/a"
        lines.append(f"| {s} | {sig(a)} | {sig(b)} | {ratio} | {'yes' if win else 'no'} |")
    return "\n".join(lines), wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=600.0, help="next_round's budget in seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="next_round's training seeds")
    parser.add_argument("--unseen", type=int, nargs="+", default=[10, 11, 12, 13, 14],
                        help="training seeds for the comparison, not used by next_round")
    parser.add_argument("--input-seed", type=int, default=0, help="training seed of the round-1 run")
    parser.add_argument("--workers", type=int, default=None, help="parallel runs (default: one per core)")
    parser.add_argument("--out", default="runs/bench_next_round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process (the probes)")
    parser.add_argument("--write-results", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    if set(args.unseen) & set(args.seeds):
        parser.error(f"--unseen must not share seeds with --seeds: {sorted(set(args.unseen) & set(args.seeds))}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)

    round1 = presets.ROUND1.replace(seed=args.input_seed)
    nbtrain.train(round1, out=out / "round1", reuse=True, sink=None)
    t0 = time.perf_counter()
    rnd = nbtrain.next_round(out / "round1", seeds=args.seeds, budget_s=args.budget, out=out / "next",
                             max_workers=args.workers)
    round_s = time.perf_counter() - t0

    proposal = _best(rnd.config, args.unseen, out / "unseen" / "proposal", args.workers)
    round2 = _best(presets.ROUND2, args.unseen, out / "unseen" / "round2", args.workers)
    table, wins = _table(proposal, round2, args.unseen)
    held = sum(e.held for e in rnd.expectations)
    changes = ", ".join(f"{k}={v!r}" for k, v in rnd.changes.items()) or "none"
    text = "\n".join([
        HEADING, "",
        f"Machine: {machine_line()}.",
        f"`python benchmarks/bench_next_round.py --budget {args.budget:g} --seeds {' '.join(map(str, args.seeds))} "
        f"--unseen {' '.join(map(str, args.unseen))}`", "",
        f"Round-1 run: ROUND1, training seed {args.input_seed}. Proposal ({rnd.number}): {changes}.",
        f"next_round: {rnd.time_used_s:.0f} s of a {args.budget:g} s budget by its own clock ({round_s:.0f} s wall, "
        f"{rnd.runs_trained} runs trained); expectations held: {held} of {len(rnd.expectations)}.", "",
        table, "",
        f"The proposal beat ROUND2 on {wins} of {len(args.unseen)} unseen seeds (target: at least 4 of 5, and every "
        f"expectation held: {'met' if wins >= 4 and held == len(rnd.expectations) else 'not met'}).", "",
        "Expectations:", "", *[f"- {e.claim}: **{e.status}** ({e.detail})" for e in rnd.expectations],
    ])
    print(text)
    if args.write_results:
        write_section(RESULTS, HEADING, text)
        print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()

"""``nbtrain next-round RUN_DIR --seeds 0,1,2 --budget 10m --out DIR``: write the next round of a run.

The run folder holds a reference-experiment run (``nbtrain train`` writes one), or a run of
your own model with ``--model module:function`` (``seed -> nn.Module``) and ``--data
module:function`` (``seed -> (train_data, val_data)``, called with the run's seed): the sweep's
``model_fn``/``data_fn`` convention, importable from the current folder or ``PYTHONPATH``.
Prints the round's markdown and writes ``round-N.md``, ``round-N.json`` and
``round-N-config.json`` into ``--out`` (then ``nbtrain train --config DIR/round-N-config.json``
trains it, for the reference experiment).
"""

from __future__ import annotations

import argparse
import re

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_budget(text: str) -> float:
    """``"600"``, ``"600s"``, ``"10m"``, ``"1.5h"`` -> seconds; ValueError naming ``--budget`` otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"--budget must be a positive time such as 600, 600s, 10m or 1h, got {text!r}")
    return float(m.group(1)) * UNITS[m.group(2) or "s"]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; ValueError naming ``--seeds`` otherwise."""
    try:
        seeds = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise ValueError(f"--seeds must be comma-separated ints such as 0,1,2, got {text!r}")
    return seeds


def import_function(text: str, option: str):
    """``"module:function"`` -> the function (the current folder is searched too); ValueError naming
    ``option`` otherwise."""
    import importlib
    import os
    import sys

    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())

    module, _, name = str(text).partition(":")
    if not module or not name:
        raise ValueError(f"{option} must be module:function, got {text!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{option} {text!r} could not be imported: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"{option} {text!r} is not callable")
    return fn


def add_next_round_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``nbtrain next-round`` to an argparse subparsers object."""
    from ..sweeps.backends import BACKENDS

    p = subparsers.add_parser("next-round", help="propose, verify and write up the next round of a run",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder of the reference experiment")
    p.add_argument("--seeds", default="0,1,2", help="training seeds of the paired runs (default 0,1,2)")
    p.add_argument("--budget", default="10m", help="time for the probes and runs: 600, 600s, 10m, 1h (default 10m)")
    p.add_argument("--out", default="runs/next-round",
                   help="where round-N.md and its runs go (default runs/next-round)")
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument("--max-workers", dest="max_workers", type=int, help="parallel runs (default: one per core)")
    p.add_argument("--model", help="module:function, seed -> your nn.Module (your own model; with --data)")
    p.add_argument("--data", help="module:function, seed -> (train_data, val_data) (your own data; with --model)")
    p.add_argument("--quiet", action="store_true", help="print only the report, not the progress lines")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of this process's probes (default 1)")
    p.set_defaults(func=next_round_command)
    return p


def next_round_command(args: argparse.Namespace) -> int:
    """Run ``nbtrain.next_round`` on the folder and print the round's markdown."""
    import sys

    from .api import next_round

    budget, seeds = parse_budget(args.budget), parse_seeds(args.seeds)
    if (args.model is None) != (args.data is None):
        raise ValueError("give --model and --data together (your own model), or neither (the reference experiment)")
    own = {}
    if args.model is not None:
        from ..training.runfolder import load_run

        run = load_run(args.run_dir)
        seed = run.config.seed if run.config is not None else 0
        train_data, val_data = import_function(args.data, "--data")(seed)
        own = {"model_factory": import_function(args.model, "--model"), "train_data": train_data,
               "val_data": val_data}
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    rnd = next_round(args.run_dir, seeds=seeds, budget_s=budget, backend=args.backend, out=args.out,
                     max_workers=args.max_workers, sink=progress, **own)
    print(rnd.to_markdown())
    print(f"written to {rnd.path}", file=sys.stderr)
    return 0


__all__ = ["add_next_round_parser", "import_function", "next_round_command", "parse_budget", "parse_seeds"]

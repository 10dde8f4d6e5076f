"""``nbtrain sweep CONFIG.json``: run a sweep described by a JSON file and print its table."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..training.config import TrainConfig
from .backends import BACKENDS
from .runner import sweep
from .trial import TIMING_COLUMNS

SPEC_KEYS = ("base", "grid", "seeds", "backend", "out", "max_workers")


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``nbtrain sweep CONFIG.json`` to an argparse subparsers object (see ``sweep_command``)."""
    p = subparsers.add_parser("sweep", help="train a grid of configs x seeds in parallel and print the table",
                              description=sweep_command.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="CONFIG.json", help="the sweep file (format below)")
    p.add_argument("--backend", choices=BACKENDS, help="override the file's backend")
    p.add_argument("--out", help="override the file's output folder")
    p.add_argument("--max-workers", dest="max_workers", type=int, help="parallel trials (default: one per core)")
    p.add_argument("--epochs", type=int, help="override the base config's epochs")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.set_defaults(func=sweep_command)
    return p


def _read_spec_file(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"no sweep file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"sweep file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"sweep file {path} must hold a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"sweep file {path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(SPEC_KEYS)}")
    return data


def load_sweep_spec(path: str | os.PathLike) -> dict:
    """Read and check a sweep file; returns ``{"base": TrainConfig, "grid", "seeds", "backend", "out", "max_workers"}``."""
    from ..training import presets

    path = Path(path)
    data = _read_spec_file(path)
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"sweep file {path}: 'base' must be an object of TrainConfig fields, got {base!r}")
    base = dict(base)
    preset = base.pop("preset", None)
    config = presets.get(preset) if preset is not None else TrainConfig()
    config = config.replace(**base) if base else config
    return {
        "base": config,
        "grid": data.get("grid", {}),
        "seeds": data.get("seeds", [0]),
        "backend": data.get("backend", "local"),
        "out": data.get("out") or str(Path("runs") / path.stem),
        "max_workers": data.get("max_workers"),
    }


def _print_table(table) -> None:
    import pandas as pd

    shown = table.drop(columns=["run_dir", *TIMING_COLUMNS])
    shown["error"] = shown["error"].str.slice(0, 60)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def sweep_command(args: argparse.Namespace) -> int:
    """Run a sweep described by a JSON file and print its table.

    The file::

        {
          "base": {"preset": "round1", "epochs": 7},
          "grid": {"lr": [2e-5, 1e-5], "grad_clip": [2.0, 3.0], "scheduler_patience": [3, 5]},
          "seeds": [0, 1, 2],
          "backend": "local",
          "out": "runs/round1-grid",
          "max_workers": null
        }

    ``base``: TrainConfig fields; ``"preset"`` (round1, round2 or a fallback's name) starts
    from a preset and the other fields change it (default: TrainConfig's defaults).
    ``grid``: TrainConfig field -> list of values. ``seeds``: list of ints (default [0]).
    ``backend``: "local" (default) or "ray". ``out``: the sweep folder (default
    runs/<file name without .json>). ``max_workers``: parallel trials (default: one per
    core). Re-running the same file resumes: finished trials are read back, not retrained.
    Exit status: 0 if every trial completed, 1 if any diverged or failed.
    """
    spec = load_sweep_spec(args.spec)
    base = spec["base"]
    if getattr(args, "epochs", None) is not None:
        base = base.replace(epochs=args.epochs)
    table = sweep(
        base,
        spec["grid"],
        spec["seeds"],
        backend=getattr(args, "backend", None) or spec["backend"],
        out=getattr(args, "out", None) or spec["out"],
        max_workers=getattr(args, "max_workers", None) or spec["max_workers"],
        progress=getattr(args, "progress", False),
    )
    _print_table(table)
    return 0 if (table["status"] == "completed").all() else 1


__all__ = ["add_sweep_parser", "load_sweep_spec", "sweep_command"]

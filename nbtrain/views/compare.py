"""Saved runs side by side: load run folders and logs, summarize each, one table for all.

A run folder (written by ``nbtrain.train(..., out=...)``) holds ``config.json``,
``history.json`` and ``checkpoint.pt``; only ``history.json`` is required here. Any other
path is a log that ``nbtrain.read_log`` reads (``nbtrain.logs.load_log``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..diagnosis.summary import summarize
from ..logs.loading import load_log
from ..training.config import TrainConfig
from ..training.history import History
from ..training.runfolder import LoadedRun


def _as_loaded(run: Any, i: int) -> tuple[str, History | Any, TrainConfig | None]:
    if isinstance(run, LoadedRun):
        return run.name, run.history, run.config
    if isinstance(run, (str, os.PathLike)):
        loaded = load_log(run)
        return loaded.name, loaded.history, loaded.config
    if isinstance(run, tuple) and len(run) == 2 and isinstance(run[0], str):
        return run[0], run[1], None
    raise TypeError(f"runs[{i}] must be a run folder, a log path, a LoadedRun or a (label, history) pair, "
                    f"got {type(run).__name__}")


def compare_runs(runs: Iterable[Any], png: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run (see ``summarize``), indexed by run name. ``runs``: run folders, log
    paths (anything ``read_log`` reads), LoadedRuns or ``(label, history)`` pairs. With
    ``png``, also writes the validation-loss curves of all runs to that file."""
    if isinstance(runs, (str, os.PathLike)) or not hasattr(runs, "__iter__"):
        raise TypeError(f"runs must be a list of run folders, LoadedRuns or (label, history) pairs, got {runs!r}")
    items = [_as_loaded(r, i) for i, r in enumerate(runs)]
    if not items:
        raise ValueError("runs is empty: give at least one run")
    names: list[str] = []
    for name, _, _ in items:  # keep labels unique so rows and legend entries stay apart
        unique, k = name, 2
        while unique in names:
            unique, k = f"{name} ({k})", k + 1
        names.append(unique)
    rows = [{"run": n, **summarize(h, c)} for n, (_, h, c) in zip(names, items)]
    table = pd.DataFrame(rows).set_index("run")
    if png is not None:
        import matplotlib.pyplot as plt

        from .plots import plot_overlay

        fig, ax = plt.subplots(figsize=(7, 4))
        try:
            plot_overlay({n: h for n, (_, h, _) in zip(names, items)}, metric="val_loss", ax=ax)
            fig.tight_layout()
            Path(png).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(png, dpi=100)
        finally:
            plt.close(fig)
    return table


__all__ = ["compare_runs"]

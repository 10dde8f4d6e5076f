"""Saved runs side by side: load run folders and logs, summarize each, one table for all.

A run folder (written by ``nbtrain.train(..., out=...)``) holds ``config.json``,
``history.json`` and ``checkpoint.pt``; only ``history.json`` is required here. Any other
path is a log that ``nbtrain.read_log`` reads (``nbtrain.logs.load_log``).

``compare_runs`` returns the numbers (for code); ``format_table`` (in ``tables``) turns it, or
a sweep table, into text formatted per column, for people.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..diagnosis.run_data import as_run_data
from ..diagnosis.settings import resolve_settings
from ..diagnosis.summary import summarize
from ..logs.loading import load_log
from ..training.config import TrainConfig
from ..training.history import History
from ..training.runfolder import LoadedRun
from .tables import COUNT_COLUMNS, format_table


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
    ``png``, also writes the comparison figure (``write_comparison_png``) to that file. Counts
    are integers (``<NA>`` where one does not apply); ``table.attrs["clip_unknown"]`` names the
    runs whose clip threshold no config states (their missing ``grad_clip`` is not "off").
    ``format_table(table)`` is the same table for people."""
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
    # a missing grad_clip is "off" when the config says so, else unknown (format_table writes which)
    table.attrs["clip_unknown"] = [n for n, (_, h, c) in zip(names, items)
                                   if not resolve_settings(c, as_run_data(h))[0].clip_known]
    for c in COUNT_COLUMNS:  # counts stay integers; a count that does not apply is <NA>, not NaN
        if c in table.columns:
            table[c] = pd.to_numeric(table[c], errors="coerce").astype("Int64")
    if png is not None:
        write_comparison_png({n: h for n, (_, h, _) in zip(names, items)}, png)
    return table


COMPARED = ("val_loss", "grad_norm_p50", "clip_fraction")  # the comparison figure's panels, when logged


def write_comparison_png(histories: dict, png: str | os.PathLike) -> None:
    """The comparison figure: one panel per metric of ``COMPARED`` that some run logs (``plot_overlay``)."""
    import matplotlib.pyplot as plt

    from ..diagnosis.run_data import as_run_data
    from .overlay import plot_overlay

    data = {n: as_run_data(h) for n, h in histories.items()}
    metrics = [m for m in COMPARED if any(d.col(m) is not None for d in data.values())] or ["val_loss"]
    rows = 1 + (len(histories) + 1) // 2  # room below each panel for a two-column legend
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6 + 0.25 * rows), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            plot_overlay(data, metric=metric, ax=ax, legend_at="below")
        fig.tight_layout()
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100)
    finally:
        plt.close(fig)


__all__ = ["COMPARED", "compare_runs", "format_table", "write_comparison_png"]

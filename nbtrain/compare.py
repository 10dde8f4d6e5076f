"""Saved runs side by side: load run folders, summarize each, one table for all.

A run folder (written by ``nbtrain.train(..., out=...)``) holds ``config.json``,
``history.json`` and ``checkpoint.pt``; only ``history.json`` is required here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .config import TrainConfig
from .diagnostics import as_run_data, resolve_settings
from .history import History
from .plots import lr_cuts

HISTORY_FILE = "history.json"
CONFIG_FILE = "config.json"


class RunFolderError(ValueError):
    """A run folder that is missing, incomplete or unreadable."""


@dataclass
class LoadedRun:
    name: str  # the config's name, else the folder's name
    path: Path
    config: TrainConfig | None
    history: History


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Read a run folder. ``config.json`` is optional; ``history.json`` is not."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a path, got {type(run_dir).__name__}: {run_dir!r}")
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"run folder {path} does not exist (or is not a folder): give the folder that "
                             "`nbtrain train --out` wrote")
    hist_path = path / HISTORY_FILE
    if not hist_path.is_file():
        raise RunFolderError(f"run folder {path} has no {HISTORY_FILE}: the run wrote no completed epoch yet, "
                             "or this is not a run folder")
    try:
        history = History.load(hist_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{hist_path} could not be read ({exc}); re-run the training or restore the file") from exc
    config = None
    cfg_path = path / CONFIG_FILE
    if cfg_path.is_file():
        try:
            config = TrainConfig.from_json(cfg_path)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{cfg_path} is not a valid nbtrain config ({exc}); fix or delete it") from exc
    name = (config.name if config is not None and config.name else "") or path.name
    return LoadedRun(name=name, path=path, config=config, history=history)


def summarize(history: Any, config: Any = None) -> dict:
    """Headline numbers of one run (JSON-safe; None where the log lacks the data)."""
    data = as_run_data(history)
    settings, _ = resolve_settings(config, data)
    val = data.col("val_loss")
    out: dict[str, Any] = {"epochs": data.n_epochs}
    if val is not None and np.isfinite(val).any():
        i = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
        out.update(best_val_loss=float(val[i]), best_epoch=data.epoch_numbers[i], final_val_loss=float(val[-1]))
    else:
        out.update(best_val_loss=None, best_epoch=None, final_val_loss=None)
    p50, mx = data.col("grad_norm_p50"), data.col("grad_norm_max")
    late = max(1, data.n_epochs // 3)
    out["grad_norm_growth_p50"] = _ratio(np.mean(p50[-late:]) if p50 is not None else None, p50[0] if p50 is not None else None)
    out["grad_norm_growth_max"] = _ratio(np.mean(mx[-late:]) if mx is not None else None, mx[0] if mx is not None else None)
    out["clip_fraction"] = _clip_fraction(data)
    out["lr_cuts"] = None if data.col("lr") is None or settings.scheduler not in ("plateau", None) else len(lr_cuts(data))
    lr = data.col("lr")
    out["final_lr"] = float(lr[-1]) if lr is not None else None
    out.update(lr=settings.lr, grad_clip=settings.grad_clip, patience=settings.patience, scheduler=settings.scheduler)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def _ratio(late, first) -> float | None:
    if late is None or first is None or not (math.isfinite(late) and math.isfinite(first)) or first <= 0:
        return None
    return float(late / first)


def _clip_fraction(data) -> float | None:
    if data.steps is not None and "clipped" in data.steps.columns:
        return float(data.steps["clipped"].astype(float).mean())
    cf, n = data.col("clip_fraction"), data.col("n_steps")
    if cf is None or not np.isfinite(cf).any():
        return None
    ok = np.isfinite(cf)
    if n is not None and np.all(np.isfinite(n[ok])) and n[ok].sum() > 0:
        return float(np.sum(cf[ok] * n[ok]) / n[ok].sum())
    return float(np.mean(cf[ok]))


def _as_loaded(run: Any, i: int) -> tuple[str, History | Any, TrainConfig | None]:
    if isinstance(run, LoadedRun):
        return run.name, run.history, run.config
    if isinstance(run, (str, os.PathLike)):
        loaded = load_run(run)
        return loaded.name, loaded.history, loaded.config
    if isinstance(run, tuple) and len(run) == 2 and isinstance(run[0], str):
        return run[0], run[1], None
    raise TypeError(f"runs[{i}] must be a run folder, a LoadedRun or a (label, history) pair, got {type(run).__name__}")


def compare_runs(runs: Iterable[Any], png: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run (see ``summarize``), indexed by run name. With ``png``, also
    writes the validation-loss curves of all runs to that file."""
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


__all__ = ["LoadedRun", "RunFolderError", "compare_runs", "load_run", "summarize"]

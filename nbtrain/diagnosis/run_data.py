"""A log as DataFrames, whatever form it came in, with the run measurements applied to it.

``as_run_data`` accepts a History, a DataFrame of epoch rows, a dict ``{"epochs": ...,
"steps": ...}`` or anything with a ``.history`` (a Run, a LoadedRun). The measurements
themselves are defined once, in ``nbtrain.measures``; the methods here only feed them
the right columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import measures
from ..training.history import History


@dataclass
class RunData:
    """A log as DataFrames: epoch rows (sorted, with per-epoch statistics filled in from
    the step rows where the epoch rows lack them) and step rows (or None)."""

    epochs: pd.DataFrame
    steps: pd.DataFrame | None
    meta: dict
    notes: list[str] = field(default_factory=list)  # how the input was interpreted

    def col(self, name: str, level: str = "epoch") -> np.ndarray | None:
        """A column as a float array, or None when missing or entirely empty."""
        df = self.epochs if level == "epoch" else self.steps
        if df is None or name not in df.columns or len(df) == 0:
            return None
        values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        if np.all(np.isnan(values)) and not df[name].map(_is_nan_number).all():
            return None
        return values

    @property
    def n_epochs(self) -> int:
        return len(self.epochs)

    @property
    def epoch_numbers(self) -> list[int]:
        return [int(e) for e in self.epochs["epoch"]]

    # -- the run measurements (defined in nbtrain.measures) -------------------------------
    def lr_cuts(self, initial_lr: float | None = None) -> list[tuple[int, float, float]] | None:
        """``(epoch, old, new)`` per LR cut in the logged ``lr``; None without an lr column.

        The LR before epoch 0 is the first ``lr_start`` when logged, else ``initial_lr``."""
        lr = self.col("lr")
        if lr is None:
            return None
        start = self.col("lr_start")
        before = start[0] if start is not None and math.isfinite(start[0]) else initial_lr
        return measures.lr_cuts(lr.tolist(), self.epoch_numbers, before)

    def cut_epochs(self, initial_lr: float | None = None) -> list[int] | None:
        """The epochs of ``lr_cuts`` (whose scheduler step lowered the LR); None without an lr column."""
        cuts = self.lr_cuts(initial_lr)
        return None if cuts is None else [e for e, _, _ in cuts]

    def clip_fraction(self, upto_epoch: int | None = None) -> tuple[float | None, str]:
        """Share of the steps clipped (through ``upto_epoch``), and its source."""
        steps = self.steps
        if steps is not None and "clipped" in steps.columns:
            if upto_epoch is not None and "epoch" in steps.columns:
                steps = steps[steps["epoch"] <= upto_epoch]
            if len(steps):
                return measures.clip_fraction(clipped=steps["clipped"].tolist())
        keep = slice(None) if upto_epoch is None else np.asarray(self.epoch_numbers) <= upto_epoch
        per_epoch, n = self.col("clip_fraction"), self.col("n_steps")
        return measures.clip_fraction(
            per_epoch=None if per_epoch is None else per_epoch[keep].tolist(),
            n_steps=None if n is None else n[keep].tolist(),
        )

    def growth(self, stat: str = "p50") -> measures.Growth | None:
        """Gradient growth of the pre-clip norm (``measures`` defines it); None when unmeasurable."""
        grouped = self.norms_by_epoch()
        if grouped is not None:
            return measures.growth_from_steps(grouped, stat)
        values = self.col(f"grad_norm_{stat}")
        if values is None:
            return None
        return measures.growth_from_epochs(values.tolist(), self.epoch_numbers, stat)

    def norms_by_epoch(self) -> dict[int, list[float]] | None:
        """The step rows' pre-clip ``grad_norm`` grouped by epoch; None without step norms."""
        steps = self.steps
        if steps is None or not {"grad_norm", "epoch"} <= set(steps.columns):
            return None
        norms = pd.to_numeric(steps["grad_norm"], errors="coerce")
        return {int(e): g.tolist() for e, g in norms.groupby(steps["epoch"])}

    def upto(self, last_epoch: int) -> "RunData":
        """The same run cut after ``last_epoch`` (epoch and step rows alike)."""
        epochs = self.epochs[self.epochs["epoch"] <= last_epoch].reset_index(drop=True)
        steps = self.steps
        if steps is not None and "epoch" in steps.columns:
            steps = steps[steps["epoch"] <= last_epoch].reset_index(drop=True)
            steps = steps if len(steps) else None
        return RunData(epochs=epochs, steps=steps, meta=self.meta, notes=list(self.notes))

    def largest_norm(self) -> tuple[float | None, str]:
        """The largest finite pre-clip norm of the run, and its source."""
        for name, level, source in (("grad_norm", "step", "step rows"), ("grad_norm_max", "epoch", "grad_norm_max")):
            values = self.col(name, level)
            if values is not None and np.isfinite(values).any():
                return float(np.nanmax(np.where(np.isfinite(values), values, np.nan))), source
        return None, ""


def _is_nan_number(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def as_run_data(history: Any) -> RunData:
    """Accept a History, a DataFrame of epoch rows, a dict ``{"epochs": ..., "steps": ...}``
    (DataFrames or lists of row dicts), or anything with a ``.history`` (a Run, a LoadedRun)."""
    notes: list[str] = []
    meta: dict = {}
    if not isinstance(history, (History, pd.DataFrame, dict)) and isinstance(getattr(history, "history", None), History):
        history = history.history
    if isinstance(history, History):
        epochs = history.to_dataframe("epoch")
        steps = history.to_dataframe("step") if history.steps else None
        meta = dict(history.meta)
    elif isinstance(history, pd.DataFrame):
        epochs, steps = history.copy(), None
    elif isinstance(history, dict):
        unknown = sorted(set(history) - {"epochs", "steps", "meta"})
        if unknown or "epochs" not in history and "steps" not in history:
            raise ValueError(
                f"history dict must have keys 'epochs' and optionally 'steps', got {sorted(history)!r}"
            )
        epochs = _frame(history.get("epochs"), "epochs")
        steps = _frame(history.get("steps"), "steps")
        meta = dict(history.get("meta") or {})
    else:
        raise TypeError(
            "history must be an nbtrain History, a pandas DataFrame of epoch rows or a dict "
            f"{{'epochs': df, 'steps': df}}, got {type(history).__name__}"
        )
    if steps is not None and steps.empty:
        steps = None
    epochs = epochs.copy() if epochs is not None else pd.DataFrame()
    if steps is not None and "epoch" not in steps.columns:
        notes.append("step rows have no 'epoch' column: per-epoch statistics from steps not derived")
    if epochs.empty and steps is not None and "epoch" in steps.columns:
        epochs = pd.DataFrame({"epoch": sorted(int(e) for e in steps["epoch"].unique())})
        notes.append("no epoch rows: epochs rebuilt from the step rows")
    if "epoch" not in epochs.columns:
        epochs.insert(0, "epoch", range(len(epochs)))
        if len(epochs):
            notes.append(f"no 'epoch' column: rows taken as epochs 0-{len(epochs) - 1}")
    epochs = epochs.sort_values("epoch", kind="stable").reset_index(drop=True)
    if steps is not None and "epoch" in steps.columns:
        epochs = _fill_from_steps(epochs, steps)
    return RunData(epochs=epochs, steps=steps, meta=meta, notes=notes)


def _frame(value: Any, name: str) -> pd.DataFrame | None:
    if value is None:
        return None
    if isinstance(value, pd.DataFrame):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return pd.DataFrame(list(value))
    raise TypeError(f"history[{name!r}] must be a DataFrame or a list of row dicts, got {type(value).__name__}")


# epoch column <- the step column it is computed from (by ``measures.epoch_stats``)
_FROM_STEPS = {
    "n_steps": "epoch",
    "grad_norm_p50": "grad_norm",
    "grad_norm_p90": "grad_norm",
    "grad_norm_max": "grad_norm",
    "clip_fraction": "clipped",
    "train_loss": "loss",
}


def _fill_from_steps(epochs: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch statistics the epoch rows lack, computed from the step rows."""
    missing = [c for c, src in _FROM_STEPS.items() if c not in epochs.columns and src in steps.columns]
    if missing:
        stats = {int(e): measures.epoch_stats(group.to_dict("records")) for e, group in steps.groupby("epoch")}
        for name in missing:
            epochs[name] = [stats.get(int(e), {}).get(name, np.nan) for e in epochs["epoch"]]
    if "lr" in steps.columns and "lr_start" not in epochs.columns:
        epochs["lr_start"] = epochs["epoch"].map(steps.groupby("epoch")["lr"].first())
    return epochs


__all__ = ["RunData", "as_run_data"]

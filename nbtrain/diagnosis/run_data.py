"""A log as DataFrames, whatever form it came in, with the run measurements applied to it.

``as_run_data`` accepts a History, a DataFrame of epoch rows, a dict ``{"epochs": ...,
"steps": ...}``, anything with a ``.history`` (a Run, a LoadedRun) or a path to a log
(read by ``nbtrain.logs.read_log``). ``frames`` defines how: which cells were logged, the
evaluation points (the epoch rows), their unit and which step rows belong to each. The
measurements themselves are defined once, in ``nbtrain.measures``; the methods here only
feed them the right columns.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import measures
from ..training.history import History
from . import frames
from .units import Units


@dataclass
class RunData:
    """A log as DataFrames: epoch rows (the evaluation points, sorted, with per-point
    statistics filled in from the step rows where the epoch rows lack them) and step rows
    (or None), plus which cells were logged (``logged``) and how the points are named."""

    epochs: pd.DataFrame
    steps: pd.DataFrame | None
    meta: dict
    notes: list[str] = field(default_factory=list)  # how the input was interpreted
    epochs_logged: pd.DataFrame | None = None  # True where a cell was logged; None: all were
    steps_logged: pd.DataFrame | None = None
    unit: str = "epoch"  # "epoch", "step" or "index" (see ``frames``)
    ids: list = field(default_factory=list)  # each point's epoch, step or count, per ``unit``
    grouping: str | None = None  # "step" (evaluation windows), "epoch" or None
    step_point: np.ndarray | None = None  # per step row: position of its point, -1 for none

    # -- cells ---------------------------------------------------------------------------------
    def _frames(self, level: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        if level not in ("epoch", "step"):
            raise ValueError(f"level must be 'epoch' or 'step', got {level!r}")
        return (self.epochs, self.epochs_logged) if level == "epoch" else (self.steps, self.steps_logged)

    def logged(self, name: str, level: str = "epoch") -> np.ndarray:
        """Per row, whether the log holds a value for ``name`` (NaN and inf are values;
        an absent key is not). All False when the column is missing."""
        df, flags = self._frames(level)
        if df is None:
            return np.zeros(0, dtype=bool)
        if name not in df.columns:
            return np.zeros(len(df), dtype=bool)
        if flags is None or name not in flags.columns:
            return np.ones(len(df), dtype=bool)
        return flags[name].to_numpy(dtype=bool).copy()

    def col(self, name: str, level: str = "epoch") -> np.ndarray | None:
        """A column as a float array (NaN where not logged), or None when missing or empty."""
        df, flags = self._frames(level)
        if df is None or name not in df.columns or len(df) == 0:
            return None
        values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        if flags is not None and name in flags.columns:
            return values if flags[name].any() else None
        if np.all(np.isnan(values)) and not df[name].map(_is_nan_number).all():
            return None
        return values

    # -- the evaluation points ---------------------------------------------------------------
    @property
    def n_epochs(self) -> int:
        return len(self.epochs)

    @property
    def epoch_numbers(self) -> list:
        """The points' ids: epochs (nbtrain, Keras), steps or counts (see ``unit``)."""
        return list(self.ids)

    @property
    def positions(self) -> list[float]:
        """The x of each point in trend fits: its epoch (``unit`` "epoch"), else its position."""
        return [float(i) for i in self.ids] if self.unit == "epoch" else [float(i) for i in range(len(self.ids))]

    def units(self) -> Units:
        return Units(self.unit, tuple(self.ids))

    def step_values(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(row positions, values)`` of the step rows that logged ``name``; None without them."""
        values = self.col(name, "step")
        if values is None:
            return None
        rows = np.flatnonzero(self.logged(name, "step"))
        return rows, values[rows]

    def step_numbers(self) -> np.ndarray:
        """The ``step`` of each step row (its row position when the log has none)."""
        s = frames.numbers(self.steps, "step")
        n = 0 if self.steps is None else len(self.steps)
        return s if s is not None else np.arange(n, dtype=float)

    # -- the run measurements (defined in nbtrain.measures) -------------------------------
    def lr_cuts(self, initial_lr: float | None = None) -> list[tuple[Any, float, float]] | None:
        """``(point, old, new)`` per LR cut in the logged ``lr``; None without an lr column.

        The LR before the first point is the first ``lr_start`` when logged, else ``initial_lr``."""
        lr = self.col("lr")
        if lr is None:
            return None
        start = self.col("lr_start")
        before = start[0] if start is not None and math.isfinite(start[0]) else initial_lr
        cuts = measures.lr_cuts(lr.tolist(), range(len(lr)), before)
        return [(self.ids[i], old, new) for i, old, new in cuts]

    def cut_epochs(self, initial_lr: float | None = None) -> list | None:
        """The points of ``lr_cuts`` (whose scheduler step lowered the LR); None without an lr column."""
        cuts = self.lr_cuts(initial_lr)
        return None if cuts is None else [e for e, _, _ in cuts]

    def _steps_through(self, last: Any) -> np.ndarray:
        """Mask of the step rows up to the point ``last`` (see ``upto``)."""
        if self.grouping == "epoch" and self.unit == "epoch":
            return frames.numbers(self.steps, "epoch") <= last
        k = sum(1 for i in self.ids if i <= last)
        return (self.step_point >= 0) & (self.step_point < k)

    def clip_fraction(self, upto_epoch: Any = None) -> tuple[float | None, str]:
        """Share of the steps clipped (through the point ``upto_epoch``), and its source."""
        if self.steps is not None and "clipped" in self.steps.columns:
            keep = self.logged("clipped", "step")
            if upto_epoch is not None and self.grouping is not None:
                keep &= self._steps_through(upto_epoch)
            if keep.any():
                return measures.clip_fraction(clipped=self.steps["clipped"][keep].tolist())
        keep = slice(None) if upto_epoch is None else np.asarray(self.ids) <= upto_epoch
        per_epoch, n = self.col("clip_fraction"), self.col("n_steps")
        return measures.clip_fraction(
            per_epoch=None if per_epoch is None else per_epoch[keep].tolist(),
            n_steps=None if n is None else n[keep].tolist(),
        )

    def growth(self, stat: str = "p50") -> measures.Growth | None:
        """Gradient growth of the pre-clip norm (``measures`` defines it); None when unmeasurable."""
        grouped = self.norms_by_epoch()
        if grouped:
            return measures.growth_from_steps(grouped, stat)
        values = self.col(f"grad_norm_{stat}")
        if values is None:
            return None
        return measures.growth_from_epochs(values.tolist(), self.ids, stat)

    def norms_by_epoch(self) -> dict[Any, list[float]] | None:
        """The step rows' logged pre-clip ``grad_norm`` grouped by point (nbtrain's runs: by the
        steps' epoch); None without step norms."""
        got = self.step_values("grad_norm")
        if got is None or self.grouping is None:
            return None
        rows, norms = got
        if self.grouping == "epoch" and self.unit == "epoch":
            keys = frames.step_epochs(self.steps)
            out: dict[Any, list[float]] = {}
            for r, v in zip(rows, norms):
                if keys[r] is not None:
                    out.setdefault(keys[r], []).append(float(v))
            return dict(sorted(out.items()))
        out = {}
        for r, v in zip(rows, norms):
            if self.step_point[r] >= 0:
                out.setdefault(self.ids[self.step_point[r]], []).append(float(v))
        return dict(sorted(out.items()))

    def upto(self, last_epoch: Any) -> "RunData":
        """The same run cut after the point ``last_epoch`` (epoch and step rows alike)."""
        keep = np.asarray(self.ids) <= last_epoch
        data = RunData(
            epochs=self.epochs[keep].reset_index(drop=True), steps=self.steps, meta=self.meta,
            notes=list(self.notes), unit=self.unit, ids=[i for i, k in zip(self.ids, keep) if k],
            grouping=self.grouping, step_point=self.step_point,
            epochs_logged=None if self.epochs_logged is None else self.epochs_logged[keep].reset_index(drop=True),
            steps_logged=self.steps_logged,
        )
        if self.steps is not None and self.grouping is not None:
            rows = self._steps_through(last_epoch)
            data.steps = self.steps[rows].reset_index(drop=True) if rows.any() else None
            data.step_point = self.step_point[rows] if rows.any() else None
            if self.steps_logged is not None:
                data.steps_logged = self.steps_logged[rows].reset_index(drop=True) if rows.any() else None
        return data

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
    (DataFrames or lists of row dicts), anything with a ``.history`` (a Run, a LoadedRun), a
    path to a log (``nbtrain.logs.read_log`` reads it) or a RunData (returned as it is)."""
    if isinstance(history, RunData):
        return history
    if isinstance(history, (str, os.PathLike)):
        from ..logs import read_log

        history = read_log(history)
    if not isinstance(history, (History, pd.DataFrame, dict)) and isinstance(getattr(history, "history", None), History):
        history = history.history
    f = frames.build(history)
    return RunData(epochs=f.epochs, steps=f.steps, meta=f.meta, notes=f.notes, epochs_logged=f.epochs_logged,
                   steps_logged=f.steps_logged, unit=f.unit, ids=f.ids, grouping=f.grouping, step_point=f.step_point)


__all__ = ["RunData", "as_run_data"]

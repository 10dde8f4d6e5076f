"""A log's rows as DataFrames: which cells were logged, the evaluation points, the step windows.

Definitions used by ``RunData`` (``run_data``):

logged cell
    From a History (or lists of row dicts) a cell is logged when its row holds the key (a
    None counts as absent); a NaN or inf the row holds is a logged value. From a DataFrame
    every cell is logged (NaN stays a value). Statistics derived from the step rows count
    as logged where they are finite.
evaluation points
    The epoch rows: an epoch end (nbtrain, Keras) or an evaluation (Hugging Face, Lightning).
    They are ordered by ``step`` when every row has one, else by ``epoch`` (unless epoch
    numbers repeat: then in log order).
unit
    How points are named: ``"epoch"`` ("epoch 3"), ``"step"`` ("the evaluation at step
    2,000": when ``meta["evaluation_unit"] == "step"``, or when epochs are fractional and
    steps are known) or ``"index"`` ("evaluation 3", counted from 1, when neither epochs nor
    steps increase). ``ids`` are the points' epochs, steps or counts accordingly.
grouping
    ``"step"``: step rows belong to the evaluation whose window holds their step
    (``measures.evaluation_windows``); ``"epoch"``: to their integer epoch (nbtrain's runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import measures
from ..training.history import History

# epoch column <- the step column it is computed from (by ``measures.epoch_stats``)
FROM_STEPS = {
    "n_steps": None,
    "grad_norm_p50": "grad_norm",
    "grad_norm_p90": "grad_norm",
    "grad_norm_max": "grad_norm",
    "clip_fraction": "clipped",
    "train_loss": "loss",
}


@dataclass
class Frames:
    """What ``as_run_data`` builds a RunData from."""

    epochs: pd.DataFrame
    steps: pd.DataFrame | None
    meta: dict
    notes: list[str] = field(default_factory=list)
    epochs_logged: pd.DataFrame | None = None  # True where logged; None: every cell
    steps_logged: pd.DataFrame | None = None
    unit: str = "epoch"
    ids: list = field(default_factory=list)
    grouping: str | None = None  # "step", "epoch" or None (step rows not placed)
    step_point: np.ndarray | None = None  # per step row: position of its point, -1 for none


# -- input forms ------------------------------------------------------------------------------
def _logged(rows: list[dict], df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: [r.get(c) is not None for r in rows] for c in df.columns}, index=df.index, dtype=bool)


def _rows_frame(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [dict(r) for r in rows]
    df = pd.DataFrame(rows)
    return df, _logged(rows, df)


def _frame(value: Any, name: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    if value is None:
        return None, None
    if isinstance(value, pd.DataFrame):
        return value.copy(), None
    if isinstance(value, (list, tuple)):
        if not all(isinstance(r, dict) for r in value):
            raise TypeError(f"history[{name!r}] must be a list of row dicts, got an item that is not a dict")
        return _rows_frame(list(value))
    raise TypeError(f"history[{name!r}] must be a DataFrame or a list of row dicts, got {type(value).__name__}")


def input_frames(history: Any) -> Frames:
    """The epoch and step rows (and which cells were logged) of any accepted input form."""
    if isinstance(history, History):
        epochs, e_logged = _rows_frame(history.epochs)
        steps, s_logged = _rows_frame(history.steps) if history.steps else (None, None)
        return Frames(epochs, steps, dict(history.meta), epochs_logged=e_logged, steps_logged=s_logged)
    if isinstance(history, pd.DataFrame):
        return Frames(history.copy(), None, {})
    if isinstance(history, dict):
        unknown = sorted(set(history) - {"epochs", "steps", "meta"})
        if unknown or "epochs" not in history and "steps" not in history:
            raise ValueError(f"history dict must have keys 'epochs' and optionally 'steps', got {sorted(history)!r}")
        epochs, e_logged = _frame(history.get("epochs"), "epochs")
        steps, s_logged = _frame(history.get("steps"), "steps")
        return Frames(epochs if epochs is not None else pd.DataFrame(), steps, dict(history.get("meta") or {}),
                      epochs_logged=e_logged, steps_logged=s_logged)
    raise TypeError(
        "history must be an nbtrain History, a pandas DataFrame of epoch rows, a dict "
        f"{{'epochs': df, 'steps': df}} or a path to a log, got {type(history).__name__}"
    )


# -- evaluation points ------------------------------------------------------------------------
def numbers(df: pd.DataFrame | None, name: str) -> np.ndarray | None:
    """A column as floats (non-numbers NaN), or None when the frame lacks it."""
    if df is None or name not in df.columns:
        return None
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _increasing(values: np.ndarray | None) -> bool:
    return values is not None and bool(np.all(np.isfinite(values))) and bool(np.all(np.diff(values) > 0))


def _reorder(f: Frames, order: np.ndarray) -> None:
    f.epochs = f.epochs.iloc[order].reset_index(drop=True)
    if f.epochs_logged is not None:
        f.epochs_logged = f.epochs_logged.iloc[order].reset_index(drop=True)


def order_points(f: Frames) -> None:
    """Sort the evaluation points and decide their unit and ids (see the module's definitions)."""
    n = len(f.epochs)
    if "epoch" not in f.epochs.columns and "step" not in f.epochs.columns:
        f.epochs.insert(0, "epoch", range(n))
        if f.epochs_logged is not None:
            f.epochs_logged.insert(0, "epoch", True)
        if n:
            f.notes.append(f"no 'epoch' column: rows taken as epochs 0-{n - 1}")
    step, epoch = numbers(f.epochs, "step"), numbers(f.epochs, "epoch")
    if step is not None and np.all(np.isfinite(step)):
        _reorder(f, np.argsort(step, kind="stable"))
    elif epoch is not None and len(np.unique(epoch)) == n:
        _reorder(f, np.argsort(epoch, kind="stable"))
    elif epoch is not None and n:
        f.notes.append("epoch numbers repeat (appended runs?): evaluation points taken in log order")
    step, epoch = numbers(f.epochs, "step"), numbers(f.epochs, "epoch")
    fractional = _increasing(epoch) and not all(float(e).is_integer() for e in epoch)
    if _increasing(step) and (f.meta.get("evaluation_unit") == "step" or fractional or not _increasing(epoch)):
        f.unit, f.ids = "step", [int(s) for s in step]
    elif _increasing(epoch):
        f.unit, f.ids = "epoch", [int(e) if float(e).is_integer() else float(e) for e in epoch]
    else:
        f.unit, f.ids = "index", list(range(1, n + 1))
        if n > 1:
            f.notes.append("evaluation points have neither increasing epochs nor increasing steps: named by their order")


def place_steps(f: Frames) -> None:
    """Which evaluation point each step row belongs to (see the module's definitions)."""
    steps = f.steps
    if steps is None:
        return
    windows = None
    if "step" in steps.columns and "step" in f.epochs.columns and len(f.epochs):
        windows = measures.evaluation_windows(numbers(steps, "step").tolist(), numbers(f.epochs, "step").tolist())
    if windows is not None:
        f.grouping = "step"
        f.step_point = np.array([-1 if w is None else w for w in windows], dtype=int)
        return
    if "epoch" not in steps.columns:
        f.notes.append("step rows have no 'epoch' column: per-epoch statistics from steps not derived")
        return
    f.grouping = "epoch"
    keys = step_epochs(steps)
    position = {int(math.floor(e)): i for i, e in enumerate(numbers(f.epochs, "epoch") if "epoch" in f.epochs else [])
                if math.isfinite(e)}
    f.step_point = np.array([position.get(k, -1) if k is not None else -1 for k in keys], dtype=int)


def step_epochs(steps: pd.DataFrame) -> list[int | None]:
    """The integer epoch of each step row (the floor of a fractional one), None when not a number."""
    return [int(math.floor(e)) if math.isfinite(e) else None for e in numbers(steps, "epoch")]


def rebuild_points(f: Frames) -> None:
    """Epoch rows from the step rows' epochs, when the log has step rows only."""
    if f.epochs.empty and f.steps is not None and "epoch" in f.steps.columns:
        keys = sorted({k for k in step_epochs(f.steps) if k is not None})
        if keys:
            f.epochs = pd.DataFrame({"epoch": keys})
            f.epochs_logged = None
            f.notes.append("no epoch rows: epochs rebuilt from the step rows")


# -- statistics from the step rows -------------------------------------------------------------
def fill_from_steps(f: Frames) -> None:
    """Per-point statistics the epoch rows lack, computed from their step rows."""
    steps = f.steps
    if steps is None or f.grouping is None:
        return
    epochs = f.epochs
    missing = [c for c, src in FROM_STEPS.items() if c not in epochs.columns and (src is None or src in steps.columns)]
    records = _step_records(f)
    groups: dict[int, list[dict]] = {}
    for point, row in zip(f.step_point, records):
        if point >= 0:
            groups.setdefault(int(point), []).append(row)
    stats = {p: measures.epoch_stats(rows) for p, rows in groups.items()}
    derived = {}
    for name in missing:
        derived[name] = [stats[i][name] if i in stats else np.nan for i in range(len(epochs))]
    if "lr" in steps.columns:
        lrs = {p: [r["lr"] for r in rows if measures.is_finite(r.get("lr"))] for p, rows in groups.items()}
        if "lr_start" not in epochs.columns:
            derived["lr_start"] = [lrs[i][0] if lrs.get(i) else np.nan for i in range(len(epochs))]
        if "lr" not in epochs.columns:  # in force after point i: the first LR of the next point's steps
            after = [next((lrs[j][0] for j in range(i + 1, len(epochs)) if lrs.get(j)), None) for i in range(len(epochs))]
            last = next((r for r in reversed(numbers(steps, "lr").tolist()) if math.isfinite(r)), np.nan)
            derived["lr"] = [a if a is not None else (last if i == len(epochs) - 1 else np.nan)
                             for i, a in enumerate(after)]
    if derived and f.epochs_logged is None:
        f.epochs_logged = pd.DataFrame(True, index=epochs.index, columns=epochs.columns, dtype=bool)
    for name, values in derived.items():
        epochs[name] = values
        f.epochs_logged[name] = [measures.is_finite(v) for v in values]
    if "lr" in derived and len(epochs):
        # the last point's LR is the one in force during its steps: what came after it is unknown
        f.epochs_logged.loc[epochs.index[-1], "lr"] = False


def _step_records(f: Frames) -> list[dict]:
    """The step rows as dicts holding only their logged cells."""
    records = f.steps.to_dict("records")
    if f.steps_logged is None:
        return records
    flags = f.steps_logged.to_dict("records")
    return [{k: v for k, v in r.items() if m.get(k, True)} for r, m in zip(records, flags)]


def build(history: Any) -> Frames:
    """Every step of ``as_run_data`` but the RunData itself."""
    f = input_frames(history)
    if f.steps is not None and f.steps.empty:
        f.steps, f.steps_logged = None, None
    rebuild_points(f)
    order_points(f)
    place_steps(f)
    fill_from_steps(f)
    return f


__all__ = ["FROM_STEPS", "Frames", "build", "numbers", "step_epochs"]

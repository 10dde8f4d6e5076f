"""Run tables for people: every column formatted by what it holds.

``format_table(df)`` takes ``compare_runs``'s table, a sweep table (``nbtrain.sweep``,
``load_sweep``) or any DataFrame with such columns, and returns a DataFrame of strings with
the same index (the numeric table stays what code reads). The rules, by column name:

- learning rates (``lr``, ``*_lr``, ``lr_start``): scientific notation as people write it, ``2e-5``;
- counts (``COUNT_COLUMNS``: epochs, ``lr_cuts``, steps, patience, seeds, ...): whole numbers;
- losses (a name holding ``loss``): one number of decimals per column, enough to give the
  column's smallest nonzero value 4 significant figures (``0.4316`` above ``1.0070``, never
  ``1.007`` under ``0.9088``), at most 6;
- ``clip_fraction``: a percentage (``30%``, ``<0.1%``);
- growth ratios (``grad_norm_growth_*``): as losses with 3 significant figures, and ``×``
  (``3.54×`` above ``4.00×``);
- ``grad_clip``: ``2``, or ``off`` for no clipping;
- times (``*_s``): 3 significant figures and ``s``;
- other numbers: as losses (one number of decimals per column); words (``TEXT_COLUMNS``, strings) as they are;
- integer columns (``integer_column``: an integer dtype, or object cells that are all ints), where the rules
  above would show plain numbers (losses, other numbers): whole numbers, as counts are (``12,345``). A
  float column stays a float column even when every value is whole: a loss of ``1.0`` keeps its decimals.

A missing value is a word, never ``NaN``/``None``: ``lr_cuts`` of a run whose LR moves at every
step (a cosine schedule: ``summarize`` counts no cuts there) is ``n/a (cosine)``; a missing clip
threshold is ``off``, or ``unknown`` for the rows ``df.attrs["clip_unknown"]`` names
(``compare_runs`` lists there the runs no config states a threshold for); a missing word (an
empty ``error``) is empty; anything else is ``n/a``. An infinite value is ``inf`` (or ``-inf``).
``final_lr`` is left out when it equals ``lr`` in every row (the LR never moved: one column says
it); when some run's LR moved, both stay. ``short=True`` also shortens the headers
(``SHORT_HEADERS``) so that a summary fits a 100-column console.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

from ..diagnosis.formatting import percent, sci, sig, times

COUNT_COLUMNS = ("epochs", "best_epoch", "lr_cuts", "epochs_done", "epochs_run", "patience", "scheduler_patience",
                 "batch_size", "grad_accum_steps", "seed", "data_seed", "n_steps", "steps", "cosine_t0",
                 "cosine_t_mult", "scheduler_cooldown")
SHORT_HEADERS = {
    "epochs": "epochs", "best_val_loss": "best val", "best_epoch": "best at", "final_val_loss": "final val",
    "grad_norm_growth_p50": "growth p50", "grad_norm_growth_max": "growth max", "clip_fraction": "clipped",
    "lr_cuts": "LR cuts", "final_lr": "final lr", "grad_clip": "clip", "scheduler_patience": "patience",
    "train_time_s": "time", "epochs_done": "epochs",
}
MISSING = "n/a"
TEXT_COLUMNS = ("error", "status", "scheduler", "run_dir", "name")


def _number(v: Any) -> float | None:
    """``v`` as a float, or None for a missing value (None, NaN, pandas' NA, a non-number)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def column_decimals(values: Any, figures: int = 4, most: int = 6) -> int:
    """Decimals that give the smallest nonzero finite |value| ``figures`` significant figures (at most ``most``)."""
    sizes = [abs(x) for x in map(_number, values) if x is not None and math.isfinite(x) and x != 0]
    if not sizes:
        return figures - 1
    return max(0, min(most, figures - 1 - math.floor(math.log10(min(sizes)))))


def _column_formatter(name: str, values: Any) -> Callable[[float], str]:
    """``_formatter(name)``, with one number of decimals for the column where it shows plain numbers
    (none for an integer column: ``integer_column``)."""
    fmt = _formatter(name)
    if fmt is times:
        g = column_decimals(values, figures=3)
        return lambda x: f"{x:,.{g}f}×"
    if fmt is sig:
        d = 0 if integer_column(values) else column_decimals(values)
        return lambda x: f"{x:,.{d}f}"
    return fmt


def integer_column(values: Any) -> bool:
    """True for a column of integers by type: an integer dtype (numpy's or pandas' nullable
    ``Int64``), or object cells that are all ints (not bools) where present. A float column whose
    values happen to be whole (a loss of 1.0, 2.0) is not one: its type says it is measured."""
    import pandas as pd

    dtype = getattr(values, "dtype", None)
    if dtype is None or pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_integer_dtype(dtype):
        return True
    if not pd.api.types.is_object_dtype(dtype):
        return False
    present = [v for v in values if _number(v) is not None or isinstance(v, str)]
    return bool(present) and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in present)


def _formatter(name: str) -> Callable[[float], str]:
    if name == "lr" or name.endswith("_lr") or name == "lr_start":
        return sci
    if name in COUNT_COLUMNS:
        return lambda x: f"{x:,.0f}" if float(x).is_integer() else sig(x)
    if "loss" in name:
        return sig
    if name == "clip_fraction":
        return percent
    if name.startswith("grad_norm_growth"):
        return times
    if name == "grad_clip":
        return lambda x: f"{x:g}"
    if name.endswith("_s"):
        return lambda x: f"{x:.3g} s"
    return sig


SCHEDULER_WORDS = {"cosine_warm_restarts": "cosine", "none": "constant LR"}


def _missing(name: str, row: Any, unknown_clip: Any = ()) -> str:
    if name == "grad_clip":
        return "unknown" if getattr(row, "name", None) in unknown_clip else "off"
    scheduler = row.get("scheduler")
    if name == "lr_cuts" and isinstance(scheduler, str) and scheduler != "plateau":
        return f"{MISSING} ({SCHEDULER_WORDS.get(scheduler, scheduler.replace('_', ' '))})"
    return MISSING


def format_cell(name: str, value: Any, row: Any = None, unknown_clip: Any = (), fmt=None) -> str:
    """One cell as ``format_table`` writes it (``row``: the cell's row, for the words of missing
    values; ``unknown_clip``: the rows whose clip threshold is unknown rather than off; ``fmt``:
    the column's formatter, default the column name's alone)."""
    x = _number(value)
    if x is None:
        if value is not None and not isinstance(value, float) and _text(value):
            return str(value)
        return _missing(name, row if row is not None else {}, unknown_clip)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return (fmt or _formatter(name))(x)


def _text(value: Any) -> bool:
    """True for a value shown as it is (a string, a bool), not a missing number."""
    return isinstance(value, (str, bool)) and value != ""


def _same_lr(df) -> bool:
    if "lr" not in df.columns or "final_lr" not in df.columns:
        return False
    for a, b in zip(df["lr"], df["final_lr"]):
        x, y = _number(a), _number(b)
        if (x is None) != (y is None) or (x is not None and not math.isclose(x, y, rel_tol=1e-9)):
            return False
    return True


def format_table(df, short: bool = False):
    """``df`` as a DataFrame of strings, formatted per column (see the module's docstring)."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame (compare_runs or a sweep table), got {type(df).__name__}")
    table = df.drop(columns=["final_lr"]) if _same_lr(df) else df
    out = pd.DataFrame(index=table.index)
    rows = [row for _, row in table.iterrows()]
    for name in table.columns:
        if _is_text(table[name]):  # words stay words; a missing one is empty
            out[name] = ["" if _number(v) is None and not isinstance(v, str) else str(v) for v in table[name]]
        else:
            unknown = df.attrs.get("clip_unknown", ())
            fmt = _column_formatter(name, table[name])
            out[name] = [_cell(name, value, row, unknown, fmt) for value, row in zip(table[name], rows)]
    if short:
        out = out.rename(columns={c: SHORT_HEADERS.get(c, c) for c in out.columns})
    return out


def _is_text(column) -> bool:
    """A column of words (strings, with missing cells; ``TEXT_COLUMNS`` always), not of numbers."""
    if column.name in TEXT_COLUMNS:
        return True
    present = [v for v in column if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    return bool(present) and all(isinstance(v, str) and _number(v) is None for v in present)


def _cell(name: str, value: Any, row: Any, unknown_clip: Any, fmt) -> str:
    if isinstance(value, bool) or (isinstance(value, str) and _number(value) is None):
        return str(value) if value != "" else ""
    return format_cell(name, value, row, unknown_clip, fmt)


__all__ = ["COUNT_COLUMNS", "column_decimals", "integer_column", "MISSING", "SHORT_HEADERS", "TEXT_COLUMNS", "format_cell",
           "format_table"]

"""Plain tables: a CSV file or a JSON lines file of training records.

Columns are named by ``read_log(..., columns={their name: nbtrain name})``, else by the
well-known names of ``aliases.PLAIN`` (nbtrain's own names, ``learning_rate``,
``global_step``, ``valid_loss``, ...). Two shapes:

- with a ``step`` column: a sparse log (``rows.sparse_rows``): step quantities make step
  rows, ``val_loss`` and other evaluation quantities make evaluation rows. When no column
  is the step ``loss``, ``train_loss`` is read as it;
- without: an epoch table (``rows.epoch_rows``), one evaluation row per line; appended
  runs as in ``runs``.

JSON lines: one object per line; ``null`` is absent, ``NaN``/``Infinity`` are floats.
"""

from __future__ import annotations

from typing import Any

from ..training.history import History
from .aliases import PLAIN, resolve
from .errors import LogFormatError, NotThisFormat
from .rows import epoch_rows, make_history, sparse_rows
from .runs import choose_run
from .tables import Table, mapped_records


def read(table: Table, columns: dict, notes: list[str], fmt: str, appended: Any) -> History:
    """A plain Table (``fmt``: ``"csv"`` or ``"jsonl"``) as a History."""
    mapping, column_notes = resolve(table.names, PLAIN, columns)
    targets = set(mapping.values())
    if not targets - {"step", "epoch"}:
        hint = "" if columns else "; name them with columns={their name: nbtrain name}"
        raise NotThisFormat(f"no column nbtrain knows (columns: {table.names[:12]}){hint}")
    if "step" in targets and "loss" not in targets and "train_loss" in targets:
        name = next(n for n, t in mapping.items() if t == "train_loss")
        mapping[name] = "loss"
        column_notes.append(f"{name!r} read as the step loss (the table has a step column and no other loss)")
    if not table.records:
        raise NotThisFormat("no data rows")
    records = mapped_records(table, mapping, LogFormatError)
    if "step" in targets:
        steps, evals, no_step = sparse_rows(records)
        if no_step:
            notes = notes + [f"{no_step} row(s) with step quantities but no step left out"]
    else:
        records, run_notes = choose_run(records, table.lines, table.restarts, appended)
        evals, row_notes = epoch_rows(records)
        steps, notes = [], notes + run_notes + row_notes
    if not steps and not evals:
        raise NotThisFormat("no row holds a quantity nbtrain reads")
    notes = notes + table.notes + column_notes
    return make_history(steps, evals, fmt=fmt, path=table.path, columns=mapping, notes=notes)


__all__ = ["read"]

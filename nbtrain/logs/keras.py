"""Keras ``CSVLogger`` files: one row per epoch.

``keras.callbacks.CSVLogger(filename)`` writes ``epoch`` (0-based) first, then the epoch's
logs in sorted order: ``loss`` (the epoch's mean training loss), ``val_loss``,
``learning_rate`` (Keras 3; ``lr`` before), and metrics (``mae``, ``val_mae``, ...; not
read, the notes name them). ``NA`` marks a key an epoch did not log. Each row becomes one
evaluation row: ``epoch``, ``train_loss``, ``val_loss``, ``lr`` (``aliases.KERAS``).

With ``append=True`` a second fit writes on below the first, its epoch counter restarting at
0 (and, when it logs other keys, rows that no longer match the header: left out, see
``tables``). Which run is read is ``read_log``'s ``appended`` (``runs``): the last by
default, and the notes say so.
"""

from __future__ import annotations

from typing import Any

from ..training.history import History
from .aliases import KERAS, resolve
from .errors import LogFormatError, NotThisFormat
from .rows import epoch_rows, make_history
from .runs import choose_run
from .tables import Table, mapped_records


def looks_like_keras(table: Table) -> bool:
    """``epoch`` as the first column, no ``step`` column, and a loss or validation loss."""
    return bool(table.names) and table.names[0] == "epoch" and "step" not in table.names and bool(
        {"loss", "val_loss"} & set(table.names))


def read(table: Table, columns: dict, notes: list[str], forced: bool, appended: Any) -> History:
    """A CSVLogger Table as a History (no step rows: Keras logs epochs)."""
    if not forced and not looks_like_keras(table):
        raise NotThisFormat("not a Keras CSVLogger file (needs 'epoch' first, 'loss' or 'val_loss', no 'step')")
    mapping, column_notes = resolve(table.names, KERAS, columns)
    if not set(mapping.values()) - {"epoch"}:
        raise NotThisFormat(f"no loss or val_loss column (columns: {table.names})")
    if not table.records:
        raise NotThisFormat("no epoch rows")
    records = mapped_records(table, mapping, LogFormatError)
    records, run_notes = choose_run(records, table.lines, table.restarts, appended)
    evals, row_notes = epoch_rows(records)
    notes = notes + table.notes + run_notes + row_notes + column_notes
    return make_history([], evals, fmt="keras", path=table.path, columns=mapping, notes=notes)


__all__ = ["looks_like_keras", "read"]

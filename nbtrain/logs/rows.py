"""Records (dicts of nbtrain names) to History rows, and the History a log becomes.

Two shapes of log:

- **sparse** (Hugging Face, Lightning, TensorBoard, a CSV/JSON lines table with a step
  column): each record holds what one log call wrote. Its step quantities (``loss``,
  ``grad_norm``, ``lr``, ...) join the step row of the same ``step`` unless that row already
  holds one of them (then a new step row starts: two log entries at one step, e.g. under
  gradient accumulation); its evaluation quantities (``val_loss``, ``train_loss``, ...)
  join the evaluation row of the same ``(step, epoch)`` the same way. A record with neither
  adds no row.
- **epoch table** (Keras, a CSV/JSON lines table without a step column): each record is one
  epoch end; ``loss`` is that epoch's ``train_loss`` and ``lr`` the LR it logged.

Rows keep the log's order. A key the log did not write at an entry is absent from its row.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from ..training.history import History
from .aliases import EVAL_NAMES, STEP_NAMES

_STEP = frozenset(STEP_NAMES)
_EVAL = frozenset(EVAL_NAMES)


def sparse_rows(records: Iterable[dict]) -> tuple[list[dict], list[dict], int]:
    """``(step rows, evaluation rows, records with step quantities but no step)``."""
    steps: list[dict] = []
    evals: list[dict] = []
    open_steps: dict = {}
    open_evals: dict = {}
    no_step = 0
    for record in records:
        step, epoch = record.get("step"), record.get("epoch")
        at_step = {k: v for k, v in record.items() if k in _STEP}
        at_eval = {k: v for k, v in record.items() if k in _EVAL}
        if at_step:
            if step is None:
                no_step += 1
            else:
                _join(steps, open_steps, step, {"step": step}, at_step, epoch)
        if at_eval:
            first = {"step": step} if step is not None else {}
            _join(evals, open_evals, (step, epoch), first, at_eval, epoch)
    return steps, evals, no_step


def _join(rows: list[dict], open_rows: dict, key, first: dict, values: dict, epoch) -> None:
    row = open_rows.get(key)
    if row is None or any(k in row for k in values):
        row = dict(first)
        rows.append(row)
        open_rows[key] = row
    if epoch is not None:
        row.setdefault("epoch", epoch)
    row.update(values)


def epoch_rows(records: Iterable[dict]) -> tuple[list[dict], list[str]]:
    """One evaluation row per record of an epoch table (``loss`` -> ``train_loss``), and
    notes (quantities an epoch table cannot place, rows numbered for want of an epoch)."""
    rows, dropped, numbered = [], set(), False
    for i, record in enumerate(records):
        row = {}
        if "epoch" in record:
            row["epoch"] = record["epoch"]
        else:
            row["epoch"], numbered = i, True
        for key, value in record.items():
            if key == "loss":
                row.setdefault("train_loss", value)
            elif key == "lr" or key in _EVAL:
                row[key] = value
            elif key in _STEP:
                dropped.add(key)
        rows.append(row)
    notes = []
    if numbered:
        notes.append("no epoch column: rows taken as epochs 0, 1, 2, ... in file order")
    if dropped:
        notes.append(f"per-step quantities in an epoch table not read: {', '.join(sorted(dropped))}")
    return rows, notes


def evaluation_unit(evals: list[dict]) -> str:
    """``"epoch"`` when every evaluation row has a whole, increasing epoch (one evaluation an
    epoch), else ``"step"`` when every one has a step, else ``"epoch"``."""
    epochs = [r.get("epoch") for r in evals]
    whole = all(isinstance(e, (int, float)) and math.isfinite(e) and float(e).is_integer() for e in epochs)
    if whole and all(b > a for a, b in zip(epochs, epochs[1:])):
        return "epoch"
    return "step" if evals and all("step" in r for r in evals) else "epoch"


def make_history(steps: list[dict], evals: list[dict], *, fmt: str, path: Path, columns: dict, notes: list[str],
                 config: dict | None = None) -> History:
    """The History of a log, with ``meta`` as the data contract states: ``source``,
    ``columns``, ``notes``, ``evaluation_unit`` and, only when the log states some,
    ``config``."""
    meta = {
        "source": {"format": fmt, "path": str(path)},
        "columns": dict(columns),
        "notes": list(notes),
        "evaluation_unit": evaluation_unit(evals),
    }
    if config:
        meta["config"] = dict(config)
    history = History(meta=meta)
    history.steps, history.epochs = steps, evals  # rows are built here from plain values: no copy
    return history


__all__ = ["epoch_rows", "evaluation_unit", "make_history", "sparse_rows"]

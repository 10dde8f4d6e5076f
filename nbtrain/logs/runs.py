"""Appended runs in one epoch table (Keras's ``CSVLogger(append=True)``, a plain CSV).

A new run starts where the epoch counter does not increase (``0 1 2 3 0 1``) or where the
header line is repeated. ``read_log(..., appended=...)`` says what to read:

- ``"last"`` (default): the last run only; the notes say how many runs the file holds;
- ``"continue"``: all runs as one, each continuing the previous one's epoch count (a fit
  called again on the same model: Keras restarts its counter unless given ``initial_epoch``);
- an int ``i``: run ``i`` (0-based; negative counts from the end).
"""

from __future__ import annotations

from typing import Any

APPENDED_CHOICES = ("last", "continue")


def check_appended(appended: Any) -> Any:
    if isinstance(appended, bool) or not (appended in APPENDED_CHOICES or isinstance(appended, int)):
        raise ValueError(f"appended must be 'last', 'continue' or a run index (int), got {appended!r}")
    return appended


def split_runs(records: list[dict], restarts: set[int]) -> list[tuple[int, int]]:
    """``[(first record, end)]`` of each run: a run ends before a record whose epoch is not
    above the previous one's, or before a repeated header (``restarts``)."""
    bounds, start, prev = [], 0, None
    for i, record in enumerate(records):
        epoch = record.get("epoch")
        if i > start and (i in restarts or (epoch is not None and prev is not None and epoch <= prev)):
            bounds.append((start, i))
            start = i
        if epoch is not None:
            prev = epoch
    if records:
        bounds.append((start, len(records)))
    return bounds


def choose_run(records: list[dict], lines: list[int], restarts: set[int], appended: Any) -> tuple[list[dict], list[str]]:
    """The records ``appended`` asks for, and a note when the file holds several runs."""
    bounds = split_runs(records, restarts)
    if len(bounds) < 2:
        return records, []
    starts = ", ".join(str(lines[a]) for a, _ in bounds[1:])
    found = f"the file holds {len(bounds)} appended runs (a new one starts at line {starts}: the epoch counter restarts)"
    if appended == "continue":
        joined, offset = [], 0
        for a, b in bounds:
            first = records[a].get("epoch")
            shift = offset - first if isinstance(first, (int, float)) else 0
            for record in records[a:b]:
                joined.append({**record, "epoch": record["epoch"] + shift} if "epoch" in record else record)
            last = joined[-1].get("epoch")
            offset = last + 1 if isinstance(last, (int, float)) else offset
        return joined, [f"{found}; read as one run, each continuing the previous one's epochs (appended='continue')"]
    index = len(bounds) - 1 if appended == "last" else appended
    if not -len(bounds) <= index < len(bounds):
        raise ValueError(f"appended={appended!r}: the file holds {len(bounds)} runs (0-{len(bounds) - 1})")
    a, b = bounds[index]
    which = "the last" if appended == "last" else f"run {index}"
    return records[a:b], [f"{found}; read {which} (lines {lines[a]}-{lines[b - 1]}); appended=<index> reads "
                          "another, appended='continue' joins them"]


__all__ = ["APPENDED_CHOICES", "check_appended", "choose_run", "split_runs"]

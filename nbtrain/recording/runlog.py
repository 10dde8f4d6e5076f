"""What every recorder shares: the rows it has taken, how they become a History, the run folder.

A recorder (``Recorder``, the Lightning and Hugging Face callbacks) adds one step row per
optimizer step, one evaluation per validation loss it is given, and one epoch end per
finished epoch. ``RunLog.history()`` turns them into an nbtrain History:

- ``History.steps``: the step rows as taken (keys only where the recorder knew the value).
- ``History.epochs``, one row per evaluation point:
    * epoch units, when epochs were ended and every evaluation falls inside an ended epoch,
      at most one per epoch: one row per ended epoch, with the epoch's statistics (over its
      step rows), the ``val_loss`` of its evaluation if it had one, ``step`` (the step the
      evaluation was taken at, else the epoch's last step), ``lr`` (in force after the
      epoch), ``lr_start`` and ``epoch_time_s``;
    * step units otherwise: one row per evaluation, with ``step``, ``val_loss``, ``lr`` and
      the statistics of the step rows since the previous evaluation.
  An evaluation's ``step`` is the ``step`` of the last step row before it (absent when it
  came before any step). Statistics come from ``measures.epoch_stats``, each only when its
  source key was recorded on some step of the window (a loss never given is absent, not NaN).
- ``History.meta``: ``source``, ``columns`` (empty: nothing renamed), ``notes``, ``config``
  (only the TrainConfig fields the recorder knows), ``evaluation_unit``, ``recorder`` and ``status``.

``RunLog.write`` writes the run folder: ``history.json`` (``History.save``, atomic) and
``status.json`` (``runfolder.write_status``; its ``epochs`` counts the History's evaluation
rows). No ``config.json``: a recorder does not know
a full TrainConfig; the known fields are in ``meta["config"]``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from .. import measures
from ..training.history import History
from ..training.runfolder import HISTORY_FILE, write_status

# epoch-row statistic -> the step key it needs (a statistic is written only when some step has that key)
_STAT_SOURCES = {
    "train_loss": "loss",
    "grad_norm_p50": "grad_norm",
    "grad_norm_p90": "grad_norm",
    "grad_norm_max": "grad_norm",
    "clip_fraction": "clipped",
}


def check_out(out: Any) -> Path:
    """``out`` as a Path; TypeError naming it when it is not a path."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path (str or PathLike), got {type(out).__name__}: {out!r}")
    return Path(out)


def check_sink(sink: Any) -> Callable[[str], Any] | None:
    if sink is not None and not callable(sink):
        raise TypeError(f"sink must be callable (e.g. print) or None, got {type(sink).__name__}: {sink!r}")
    return sink


def window_stats(window: list[dict]) -> dict:
    """``measures.epoch_stats`` of the step rows, keeping only statistics whose source was recorded."""
    stats = measures.epoch_stats(window)
    present = {k for row in window for k in row}
    return {k: v for k, v in stats.items() if _STAT_SOURCES.get(k, k) in present or k == "n_steps"}


class RunLog:
    """Step rows, evaluations and epoch ends of one run, and the run folder they make."""

    def __init__(self, out: Any, source: str, sink: Callable[[str], Any] | None = print,
                 epoch_in_steps: bool = True) -> None:
        self.out = check_out(out)
        self.sink = check_sink(sink)
        self.source = source
        self.epoch_in_steps = epoch_in_steps  # False: drop step rows' "epoch" unless an epoch was ended
        self.steps: list[dict] = []
        self.evaluations: list[dict] = []  # {"at": len(steps) then, "epoch_index", "val_loss", "lr", ...}
        self.epoch_ends: list[dict] = []  # {"at", "epoch", "time", "lr"}
        self.config: dict = {}
        self.recorder: dict = {}
        self.notes: list[str] = []
        self._epoch_started = time.perf_counter()

    # -- taking rows ------------------------------------------------------------------
    def note(self, text: str) -> None:
        """Add a note to ``meta["notes"]`` once."""
        if text not in self.notes:
            self.notes.append(text)

    def add_step(self, row: dict) -> None:
        self.steps.append(row)

    def last_step(self) -> int | None:
        return self.steps[-1]["step"] if self.steps else None

    def add_evaluation(self, val_loss: float, lr: float | None = None, **extra: Any) -> dict:
        """An evaluation at the current step (after the last step row); returns its record."""
        record = {"at": len(self.steps), "epoch_index": len(self.epoch_ends), "val_loss": val_loss, **extra}
        if lr is not None:
            record["lr"] = lr
        self.evaluations.append(record)
        return record

    def end_epoch(self, epoch: int | float | None = None, lr: float | None = None) -> dict:
        """Close the current epoch (numbered ``epoch``, default: epochs ended so far); returns its record."""
        now = time.perf_counter()
        record = {"at": len(self.steps), "epoch": len(self.epoch_ends) if epoch is None else epoch,
                  "time": now - self._epoch_started}
        if lr is not None:
            record["lr"] = lr
        self.epoch_ends.append(record)
        self._epoch_started = now
        return record

    def start_epoch(self) -> None:
        """Restart the epoch clock (the time before an epoch's first step is not the epoch's)."""
        self._epoch_started = time.perf_counter()

    # -- the History ------------------------------------------------------------------
    def epoch_units(self) -> bool:
        """Whether evaluation points are epochs (see the module's docstring)."""
        if not self.epoch_ends:
            return False
        seen = [e["epoch_index"] for e in self.evaluations]
        return all(i < len(self.epoch_ends) for i in seen) and len(seen) == len(set(seen))

    def history(self, status: str | None = None) -> History:
        """The History of what was recorded so far (rows copied)."""
        by_epochs = self.epoch_units()
        rows = self._epoch_rows() if by_epochs else self._evaluation_rows()
        steps = self.steps
        if not self.epoch_in_steps and not self.epoch_ends:
            steps = [{k: v for k, v in r.items() if k != "epoch"} for r in steps]
        return History(steps, rows, self._meta("epoch" if by_epochs else "step", status))

    def _epoch_rows(self) -> list[dict]:
        evals = {e["epoch_index"]: e for e in self.evaluations}
        rows, start = [], 0
        for i, end in enumerate(self.epoch_ends):
            window = self.steps[start:end["at"]]
            row = {"epoch": end["epoch"]}
            ev = evals.get(i)
            step = self._step_before(ev["at"] if ev else end["at"])
            if step is not None:
                row["step"] = step
            row.update(window_stats(window))
            if ev is not None:
                row["val_loss"] = ev["val_loss"]
            if "lr" in end:
                row["lr"] = end["lr"]
            if window and "lr" in window[0]:
                row["lr_start"] = window[0]["lr"]
            row["epoch_time_s"] = end["time"]
            rows.append(row)
            start = end["at"]
        return rows

    def _evaluation_rows(self) -> list[dict]:
        rows, start = [], 0
        for ev in self.evaluations:
            row = {}
            step = self._step_before(ev["at"])
            if step is not None:
                row["step"] = step
            extra = {k: v for k, v in ev.items() if k not in ("at", "epoch_index", "val_loss", "lr")}
            row.update(extra)
            row["val_loss"] = ev["val_loss"]
            if "lr" in ev:
                row["lr"] = ev["lr"]
            row.update(window_stats(self.steps[start:ev["at"]]))
            rows.append(row)
            start = ev["at"]
        return rows

    def _step_before(self, at: int) -> int | None:
        return self.steps[at - 1]["step"] if at > 0 else None

    def _meta(self, unit: str, status: str | None) -> dict:
        meta = {
            "source": {"format": self.source, "path": str(self.out)},
            "columns": {},
            "notes": list(self.notes),
            "config": dict(self.config),
            "evaluation_unit": unit,
            "recorder": dict(self.recorder),
        }
        if status is not None:
            meta["status"] = status
        return meta

    # -- the run folder ---------------------------------------------------------------
    def write(self, status: str = "running", message: str = "") -> History:
        """Write ``history.json`` and ``status.json`` to ``out`` (atomically); returns the History."""
        history = self.history(status)
        history.save(self.out / HISTORY_FILE)
        write_status(self.out, status, message, len(history.epochs), None)
        return history

    def say(self, text: str) -> None:
        if self.sink is not None:
            self.sink(text)

    def summary(self) -> str:
        """One line: what was recorded and where it goes."""
        unit = "epochs" if self.epoch_units() else "evaluations"
        n = len(self.epoch_ends) if unit == "epochs" else len(self.evaluations)
        return f"{self.source}: {len(self.steps)} steps, {n} {unit} -> {self.out}"


__all__ = ["RunLog", "check_out", "check_sink", "window_stats"]

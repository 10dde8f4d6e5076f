"""The runs of a dashboard session, and the callback that fills them while a run trains.

The training thread only appends rows to a ``RunRecord`` under the session's lock (the
``Recorder`` callback) and wakes the refresher; everything else reads copies, taken
under the same lock (``Session``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ... import measures
from ...training.callbacks import Callback
from ...training.config import TrainConfig
from ...training.trainer import Run, Trainer
from ..livepanel import lr_text


@dataclass
class RunRecord:
    """One run of the session as the plots see it: rows so far, and the Run once done."""

    index: int  # 1-based run number in this session
    config: TrainConfig
    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    steps_per_epoch: int = 0
    started: float = 0.0  # perf_counter() when Train was pressed
    fit_started: float = 0.0  # perf_counter() when the first epoch began (data and model ready)
    first_drawn: float | None = None  # perf_counter() of the first plot showing one of its steps
    ended: float = 0.0  # perf_counter() when the run ended (before the diagnosis)
    redraws: int = 0  # redraws while it was the current run
    run: Run | None = None
    error: str = ""
    device: str = ""  # the device the config resolved to when Train was pressed ("cpu", "cuda:0")

    @property
    def ran_on(self) -> str:
        """``cuda:0, precision bf16-mixed``: the device and precision the run used (as its trainer recorded them)."""
        meta = self.run.history.meta if self.run is not None else {}
        return f"{meta.get('device') or self.device}, precision {meta.get('precision') or self.config.precision}"

    @property
    def settings(self) -> str:
        """``lr 2e-5, clip 2, patience 5``: the settings the run is known by (the scheduler
        instead of the patience when it is not the plateau one)."""
        c = self.config
        clip = "off" if c.grad_clip is None else f"{c.grad_clip:g}"
        schedule = f"patience {c.scheduler_patience}" if measures.uses_plateau(c) else c.scheduler
        return f"lr {lr_text(c.lr)}, clip {clip}, {schedule}"

    @property
    def label(self) -> str:
        """``#2 lr 2e-5, clip 2, patience 5``: the run's number and settings (the plots' key)."""
        return f"#{self.index} {self.settings}"

    def timing(self) -> dict:
        """Seconds from Train to the first plot showing a step and to the end; redraws during it."""
        return {
            "run": self.index,
            "first_plot_s": None if self.first_drawn is None else self.first_drawn - self.started,
            "wall_s": self.ended - self.started,
            "redraws": self.redraws,
        }


class Session:
    """The runs of one dashboard session (oldest first) and the current one, under ``lock``.

    A failed run is dropped again, so the plots go back to what they showed before it.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: list[RunRecord] = []
        self.current: RunRecord | None = None
        self._counter = 0

    def new_run(self, config: TrainConfig, device: str = "") -> tuple[RunRecord, RunRecord | None]:
        """Add a run (now the current one) on ``device``; returns it and the run that was current before."""
        with self.lock:
            self._counter += 1
            record = RunRecord(index=self._counter, config=config, started=time.perf_counter(), device=device)
            previous = self.current
            self.records.append(record)
            self.current = record
        return record, previous

    def end_run(self, record: RunRecord, run: Run | None, previous: RunRecord | None) -> None:
        """Keep ``run`` as the record's result; without one, drop the record and go back to ``previous``."""
        with self.lock:
            record.ended = time.perf_counter()
            record.run = run
            if run is None:
                if record in self.records:
                    self.records.remove(record)
                self.current = previous if previous in self.records else None

    def finished(self) -> list[RunRecord]:
        """The runs that ended with a Run (completed, stopped or diverged)."""
        with self.lock:
            return [r for r in self.records if r.run is not None]

    def clear(self) -> None:
        """Forget every run but one still in progress."""
        with self.lock:
            self.records = [r for r in self.records if r is self.current and r.run is None]


class Recorder(Callback):
    """Copies the trainer's rows into a RunRecord (under ``lock``) and calls ``wake(epoch_end)``.

    When ``stop_event`` is set, the trainer is asked to stop at its next chance (also when
    Stop was pressed while the data and model were still being prepared).
    """

    def __init__(self, record: RunRecord, lock: threading.RLock, stop_event: threading.Event,
                 wake: Callable[[bool], None]) -> None:
        self.record = record
        self.lock = lock
        self.stop_event = stop_event
        self.wake = wake

    def on_train_begin(self, trainer: Trainer) -> None:
        with self.lock:
            self.record.steps_per_epoch = trainer.steps_per_epoch
            self.record.fit_started = time.perf_counter()
        if self.stop_event.is_set():
            trainer.stop()

    def on_step_end(self, trainer: Trainer, row: dict) -> None:
        with self.lock:
            self.record.steps.append(row)
        if self.stop_event.is_set():
            trainer.stop()
        self.wake(False)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        with self.lock:
            self.record.epochs.append(row)
        self.wake(True)


__all__ = ["Recorder", "RunRecord", "Session"]

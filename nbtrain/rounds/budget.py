"""The time budget of a round: what one run costs, what a phase costs, whether a run may start.

Definitions
-----------
cost of one run
    ``setup_s + epochs * epoch_s``. ``epoch_s`` is the measured time per epoch (the runs'
    ``epoch_time_s``, as trained in the workers, side by side) of the runs done so far; until one
    is done, the input run's median ``epoch_time_s`` (``DEFAULT_EPOCH_S`` when its log has none).
    ``setup_s`` is the rest of a run's measured ``train_time_s`` (building the model and the
    data, the summary), the median so far; ``SETUP_GUESS_S`` before.
cost of a phase
    ``startup_s + ceil(runs / workers)`` times the cost of one run: the workers run side by
    side, and each call to the backend starts its worker processes first (``startup_s``: the
    median measured delay of a call's first result beyond that run's own time;
    ``STARTUP_GUESS_S`` before one is measured).
may start
    A run starts only when the time used so far, plus its cost, plus what later phases must
    keep (``reserve_s``), is within the budget; the first run of a config only when all its
    seeds fit (``runs``), so a config is not left half measured. So the budget is exceeded by at
    most the runs already going when an estimate proves short: one batch, one run per worker.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Sequence

from .. import measures

SETUP_GUESS_S = 1.0  # per run, until one is timed: building the model and the data
STARTUP_GUESS_S = 5.0  # per call, until one is timed: starting worker processes (imports)
DEFAULT_EPOCH_S = 10.0  # per epoch, when the input run's log has no epoch_time_s


def input_epoch_seconds(epochs: Sequence[dict]) -> float | None:
    """Median ``epoch_time_s`` of a history's epoch rows; None when it has none."""
    values = measures.finite(r.get("epoch_time_s") for r in epochs)
    return statistics.median(values) if values else None


class Budget:
    """Time accounting for one round (see the module's definitions)."""

    def __init__(self, budget_s: float, workers: int, epoch_s: float | None, clock=time.perf_counter) -> None:
        self.budget_s = float(budget_s)
        self.workers = int(workers)
        self.clock = clock
        self.start = clock()
        self.guess_epoch_s = epoch_s if epoch_s is not None and epoch_s > 0 else DEFAULT_EPOCH_S
        self.guess_source = "the input run's epoch_time_s" if epoch_s is not None else "a default guess"
        self.timed: list[tuple[int, float, float]] = []  # (epochs, seconds in epochs, train_time_s) per run
        self.startups: list[float] = []  # measured start-up of each backend call

    # -- estimates ---------------------------------------------------------------------------
    @property
    def epoch_s(self) -> float:
        epochs = sum(e for e, _, _ in self.timed)
        seconds = sum(s for _, s, _ in self.timed)
        return seconds / epochs if epochs > 0 and seconds > 0 else self.guess_epoch_s

    @property
    def setup_s(self) -> float:
        rest = [max(0.0, t - s) for _, s, t in self.timed]
        return statistics.median(rest) if rest else SETUP_GUESS_S

    @property
    def startup_s(self) -> float:
        return statistics.median(self.startups) if self.startups else STARTUP_GUESS_S

    def run_seconds(self, epochs: int) -> float:
        return self.setup_s + epochs * self.epoch_s

    def phase_seconds(self, runs: int, epochs: int) -> float:
        if runs <= 0:
            return 0.0
        return self.startup_s + math.ceil(runs / self.workers) * self.run_seconds(epochs)

    # -- the clock ---------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    @property
    def remaining(self) -> float:
        return self.budget_s - self.elapsed

    def may_start(self, epochs: int, reserve_s: float = 0.0, starting_workers: bool = False, runs: int = 1) -> bool:
        """Whether ``runs`` runs of ``epochs`` (side by side on the workers) fit, keeping ``reserve_s``
        (and a call's start-up when ``starting_workers``)."""
        startup = self.startup_s if starting_workers else 0.0
        need = math.ceil(max(runs, 1) / self.workers) * self.run_seconds(epochs)
        return self.elapsed + startup + need + reserve_s <= self.budget_s

    def record(self, epochs: Any, epoch_seconds: Any, train_s: Any) -> None:
        """Time one run that trained: its epochs, the sum of their ``epoch_time_s``, its ``train_time_s``
        (a run read back from an earlier call costs nothing and is not recorded)."""
        if all(measures.is_finite(v) for v in (epochs, epoch_seconds, train_s)) and epochs > 0:
            self.timed.append((int(epochs), float(epoch_seconds), float(train_s)))

    def record_startup(self, seconds: float) -> None:
        if measures.is_finite(seconds):
            self.startups.append(max(0.0, float(seconds)))

    def describe(self) -> str:
        n = len(self.timed)
        how = f"measured on {n} run{'s' if n != 1 else ''}" if n else f"estimated from {self.guess_source}"
        return (f"{self.elapsed:.0f} s used of {self.budget_s:.0f} s; one run ≈ {self.setup_s:.1f} s + "
                f"{self.epoch_s:.2f} s per epoch ({how}), {self.workers} at a time, {self.startup_s:.1f} s to "
                "start the workers")


__all__ = ["Budget", "DEFAULT_EPOCH_S", "SETUP_GUESS_S", "STARTUP_GUESS_S", "input_epoch_seconds"]

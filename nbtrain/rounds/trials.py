"""The round's runs: configs x seeds trained on the sweep backend, within the budget.

An *arm* is the unchanged config with some fields changed (none for the unchanged config
itself), trained for a number of epochs on each of the round's seeds. Each (arm, seed) is a
sweep trial (``nbtrain.sweeps.plan.Trial``), run by the sweep's backend
(``nbtrain.sweeps.backends.RUNNERS``) and recorded in ``done.json`` keyed by the code
fingerprint, so a round called again with the same ``out`` reads finished runs back instead
of training them again. Folder: ``<folder>/<config_label of the changes and epochs>/seed=<seed>``.

A phase's runs go to the backend in one call, in order, ``workers`` at a time. The budget
is checked before the call (for the first batch) and each time a run ends (for the run that
would take its place, ``Budget.may_start``). When the next run does not fit, the call is
stopped: runs not yet started are left out ("skipped"), the runs still going in the other
workers finish and are read back from their ``done.json``. No run is cut short.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..diagnosis.run_data import as_run_data
from ..diagnosis.summary import summarize
from ..training.config import TrainConfig
from ..training.history import History
from ..training.runfolder import HISTORY_FILE, code_fingerprint
from ..sweeps.backends import RUNNERS
from ..sweeps.plan import Trial, config_label, trial_config
from ..sweeps.trial import callables_of, read_done
from .budget import Budget
from .candidates import Comparison, SeedResult

FINISHED = ("completed", "diverged")


class _BudgetStop(Exception):
    """Raised from a run's callback to stop a backend call: the next run does not fit the budget."""


@dataclass
class Arm:
    """One config of the round on every seed (see the module docstring)."""

    changes: dict  # TrainConfig field -> value on top of the unchanged config
    epochs: int
    rows: dict = field(default_factory=dict)  # seed -> the sweep trial's row
    skipped: set = field(default_factory=set)  # seeds the budget could not afford

    @property
    def params(self) -> dict:
        return {**self.changes, "epochs": self.epochs}

    def finished(self, seeds) -> bool:
        """Every seed trained to the end (or diverged): the arm can be compared."""
        return all(self.rows.get(s, {}).get("status") in FINISHED for s in seeds)


class Runner:
    """Trains arms of one round on the sweep backend, within a budget (see the module docstring)."""

    def __init__(self, base: TrainConfig, seeds, folder: Path, backend: str, budget: Budget,
                 model_fn=None, data_fn=None, sink: Callable[[str], None] = lambda _m: None) -> None:
        self.base, self.seeds, self.folder = base, list(seeds), Path(folder)
        self.backend, self.budget, self.model_fn, self.data_fn, self.say = backend, budget, model_fn, data_fn, sink
        self.code = code_fingerprint()
        self.fns = callables_of(model_fn, data_fn)
        self.arms: dict[str, Arm] = {}
        self.trained = 0  # runs trained by this round (not read back)

    def arm(self, changes: dict, epochs: int) -> Arm:
        """The arm for ``changes`` at ``epochs`` (one object per distinct pair)."""
        key = config_label({**changes, "epochs": epochs})
        if key not in self.arms:
            self.arms[key] = Arm(dict(changes), epochs)
        return self.arms[key]

    def trial(self, arm: Arm, seed: int) -> Trial:
        run_dir = self.folder / config_label(arm.params) / f"seed={seed}"
        return Trial(arm.params, seed, str(run_dir), self.base.to_dict(), self.code)

    def run(self, arms: list[Arm], reserve_s: Callable[[], float] = lambda: 0.0, seeds=None) -> None:
        """Train every seed (of ``seeds``, default the round's) of ``arms`` not yet done, arm by arm,
        as the budget allows: a run starts only if it leaves ``reserve_s()`` seconds for later phases."""
        jobs = []
        for arm in arms:
            for seed in self.seeds if seeds is None else seeds:
                if seed in arm.rows:
                    continue
                trial = self.trial(arm, seed)
                row = read_done(trial.run_dir, trial_config(trial).to_dict(), self.fns, self.code)
                if row is not None:
                    arm.rows[seed] = row
                elif (arm, seed) not in [(a, s) for a, s, _ in jobs]:
                    jobs.append((arm, seed, trial))
        if jobs and not self.budget.may_start(jobs[0][0].epochs, reserve_s(), True, _arm_runs(jobs, 0)):
            for arm, seed, _ in jobs:
                arm.skipped.add(seed)
            return
        if jobs:
            self._call(jobs, reserve_s)

    def _call(self, jobs: list, reserve_s: Callable[[], float]) -> None:
        """One backend call for ``jobs``, stopped when the next run does not fit (see the module docstring)."""
        done: set[int] = set()
        t0, workers = time.perf_counter(), self.budget.workers

        def on_done(i: int, row: dict) -> None:
            arm, seed, _ = jobs[i]
            arm.rows[seed] = row
            done.add(i)
            self._timed(row, None if len(done) > 1 else time.perf_counter() - t0)
            self.say(f"  {config_label(arm.changes) if arm.changes else 'unchanged'}, {arm.epochs} epochs, seed "
                     f"{seed}: {row['status']}, best val {_fmt(row.get('best_val_loss'))}")
            queued = len(done) + workers - 1  # the next run to start, in order (the others are running)
            if queued < len(jobs) and not self.budget.may_start(jobs[queued][0].epochs, reserve_s(),
                                                                runs=_arm_runs(jobs, queued)):
                raise _BudgetStop

        try:
            RUNNERS[self.backend]([t for _, _, t in jobs], self.model_fn, self.data_fn, workers, on_done)
        except _BudgetStop:
            self._collect(jobs, done, min(workers - 1, len(jobs) - len(done)))
        for i, (arm, seed, _) in enumerate(jobs):
            if seed not in arm.rows:
                arm.skipped.add(seed)

    def _timed(self, row: dict, first_wall: float | None) -> None:
        """Record a run's cost (and the call's start-up, from its first run) in the budget."""
        self.trained += 1
        history = None if row.get("status") not in FINISHED else History.load(Path(row["run_dir"]) / HISTORY_FILE)
        seconds = sum(r.get("epoch_time_s") or 0.0 for r in history.epochs) if history is not None else None
        self.budget.record(row.get("epochs_done"), seconds, row.get("train_time_s"))
        if first_wall is not None and row.get("train_time_s") is not None:
            self.budget.record_startup(first_wall - row["train_time_s"])

    def _collect(self, jobs: list, done: set, running: int) -> None:
        """After a stop: wait for the ``running`` runs still going to write their ``done.json``."""
        deadline = time.perf_counter() + 2 * self.budget.run_seconds(max(a.epochs for a, _, _ in jobs)) + 10
        while running > 0 and time.perf_counter() < deadline:
            time.sleep(0.5)
            for i, (arm, seed, trial) in enumerate(jobs):
                if i in done:
                    continue
                row = read_done(trial.run_dir, trial_config(trial).to_dict(), self.fns, self.code)
                if row is not None:
                    arm.rows[seed], running = row, running - 1
                    done.add(i)
                    self._timed(row, None)

    # -- reading the runs back -----------------------------------------------------------------
    def history(self, arm: Arm, seed: int):
        """The History of one finished run, or None."""
        row = arm.rows.get(seed)
        if row is None or row.get("status") not in FINISHED:
            return None
        return History.load(Path(row["run_dir"]) / HISTORY_FILE)

    def best_val(self, arm: Arm, seed: int, epochs: int | None = None) -> float | None:
        """Best validation loss of a run (over its first ``epochs`` epochs when given)."""
        row = arm.rows.get(seed)
        if row is None or row.get("status") not in FINISHED:
            return None
        if epochs is None or epochs >= arm.epochs:
            return row.get("best_val_loss")
        data = as_run_data(self.history(arm, seed))
        return summarize(data.upto(epochs - 1))["best_val_loss"] if data.n_epochs else None

    def compare(self, arm: Arm, baseline: Arm, epochs: int) -> Comparison:
        """The paired comparison of ``arm`` with ``baseline`` over the first ``epochs`` epochs."""
        results = []
        for s in self.seeds:
            status = arm.rows.get(s, {}).get("status", "not run")
            results.append(SeedResult(s, self.best_val(baseline, s, epochs), self.best_val(arm, s, epochs), status))
        # a candidate run that diverged or failed is measured (a loss); one the budget skipped is not
        complete = baseline.finished(self.seeds) and all(s in arm.rows for s in self.seeds)
        return Comparison(epochs, tuple(results), complete)


def _arm_runs(jobs: list, i: int) -> int:
    """The runs to budget for when job ``i`` starts: all of its config's runs when it is the
    config's first (a config starts only when every seed fits), else one."""
    arm = jobs[i][0]
    if i > 0 and jobs[i - 1][0] is arm:
        return 1
    return sum(1 for a, _, _ in jobs if a is arm)


class SplitData:
    """The sweep's ``data_fn`` for data given as objects: ``SplitData(train, val)(seed) -> (train, val)``.

    Top level and holding only the data, so the local backend's workers can unpickle it
    (tensors and TensorDatasets pickle; a Dataset must be picklable too). Every seed gets the
    same data, as in ``train(config, model, train_data, val_data)``.
    """

    def __init__(self, train_data: Any, val_data: Any) -> None:
        self.train_data, self.val_data = train_data, val_data

    def __call__(self, seed: int) -> tuple:
        return self.train_data, self.val_data


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4g}"


__all__ = ["Arm", "FINISHED", "Runner", "SplitData"]

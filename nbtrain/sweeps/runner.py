"""Grid sweeps: every combination of a few TrainConfig fields, for several seeds, in parallel.

``sweep(base, grid, seeds)`` trains one run per (grid point, seed), each in its own run
folder, and returns one table row per run with the grid values, the seed and the run's
headline numbers (``nbtrain.summarize``). The trials run on a backend
(``nbtrain.sweeps.backends``: a local process pool, or Ray). Each trial sets
``torch.set_num_threads(1)`` in its worker process, so both backends give the same numbers
for the same seeds, and N workers share N cores without oversubscribing.

Folder layout, for ``out="runs/grid"`` and ``grid={"lr": [2e-5], "grad_clip": [2.0]}``::

    runs/grid/sweep.json                       what was asked (base config, grid, seeds, code)
    runs/grid/results.csv                      the table, rewritten at the end of each call
    runs/grid/lr=2e-05_clip=2.0/seed=0/        a run folder: config.json, history.json,
                                               checkpoint.pt, and done.json written last

A sweep that was interrupted, or is called again with the same arguments, resumes: trials
whose ``done.json`` matches the config, the model/data functions and the code are read back,
not retrained (``nbtrain.sweeps.trial``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..files import atomic_write_text, read_json, write_json
from ..training.config import TrainConfig
from ..training.runfolder import code_fingerprint
from .backends import BACKENDS, RUNNERS, import_ray
from .placement import local_plan
from .plan import DataFn, ModelFn, Trial, check_callable, check_grid, check_seeds, plan, trial_config
from .trial import DONE_FILE, STATUSES, SUMMARY_COLUMNS, TRAILING_COLUMNS, callables_of, read_done

SPEC_FILE = "sweep.json"
SPEC_FORMAT = "nbtrain.sweep/1"
RESULTS_FILE = "results.csv"
FLOAT_COLUMNS = ("best_val_loss", "final_val_loss", "grad_norm_growth_p50", "grad_norm_growth_max",
                 "clip_fraction", "final_lr", "train_time_s")
INT_COLUMNS = ("best_epoch", "lr_cuts", "epochs_done")


# -- checks and records ------------------------------------------------------------------------
def _check_arguments(backend: str, max_workers: Any, out: Any, model_fn, data_fn) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ValueError(f"max_workers must be a positive int or None, got {max_workers!r}")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}: {out!r}")
    check_callable("model_fn", model_fn, backend)
    check_callable("data_fn", data_fn, backend)
    if (model_fn is None) != (data_fn is None):
        given, missing = ("model_fn", "data_fn") if data_fn is None else ("data_fn", "model_fn")
        raise ValueError(f"{given} was given without {missing}: give both (your own model and data) "
                         "or neither (the reference experiment)")
    if backend == "ray":
        import_ray()


def _write_spec(out: Path, base: TrainConfig, grid: dict, seeds: list, fns: dict, code: str) -> None:
    spec = {"format": SPEC_FORMAT, "base": base.to_dict(), "grid": grid, "seeds": seeds, "callables": fns,
            "code": code}
    try:
        write_json(out / SPEC_FILE, spec, indent=1)
    except TypeError:  # grid values JSON cannot hold: keep their repr
        spec["grid"] = {k: [repr(v) for v in vs] for k, vs in grid.items()}
        write_json(out / SPEC_FILE, spec, indent=1)


def _finished(trials: Sequence[Trial], fns: dict, code: str) -> tuple[list[dict | None], list[int]]:
    """The rows read back from ``done.json`` (None where a trial must run) and the indices to run."""
    rows: list[dict | None] = [None] * len(trials)
    todo: list[int] = []
    for i, t in enumerate(trials):
        try:
            cfg = trial_config(t).to_dict()
        except (ValueError, TypeError):
            cfg = None
        rows[i] = read_done(t.run_dir, cfg, fns, code)
        if rows[i] is None:
            todo.append(i)
    return rows, todo


def _table(rows: Sequence[dict], grid_keys: Sequence[str]):
    import pandas as pd

    columns = [*grid_keys, "seed", *SUMMARY_COLUMNS, *TRAILING_COLUMNS]
    df = pd.DataFrame(list(rows), columns=columns)
    for c in FLOAT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in INT_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["error"] = df["error"].fillna("").astype(str)
    return df


# -- running ------------------------------------------------------------------------------------
def _start_line(trials: Sequence[Trial], todo: list[int], n_seeds: int, out: Path, backend: str,
                max_workers: int | None) -> str:
    n_trials, n_todo = len(trials), len(todo)
    if not n_todo:
        where = "nothing to train"
    elif backend == "local":
        where = "local backend, " + local_plan([trials[i] for i in todo], max_workers).describe()
    else:
        where = "ray backend" + (f", at most {max_workers} tasks at a time" if max_workers else "")
    return (f"sweep: {n_trials} trials ({n_trials // n_seeds} grid points x {n_seeds} seeds) in {out}; "
            f"{n_trials - n_todo} already done, {n_todo} to run ({where})")


def _run_todo(trials, rows, todo, backend, max_workers, model_fn, data_fn, progress: bool) -> None:
    """Run the trials at ``todo`` on the backend, filling ``rows`` as they finish."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(trials), initial=len(trials) - len(todo), desc="sweep", unit="trial")

    def on_done(j: int, row: dict) -> None:
        rows[todo[j]] = row
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"last: {row['status']}", refresh=False)

    pending = [trials[i] for i in todo]
    try:
        if pending:
            RUNNERS[backend](pending, model_fn, data_fn, max_workers, on_done)
    finally:
        if bar is not None:
            bar.close()


def sweep(
    base_config: TrainConfig,
    grid: Mapping[str, Sequence] | None = None,
    seeds: Sequence[int] = (0,),
    backend: str = "local",
    out: str | os.PathLike = "runs/sweep",
    max_workers: int | None = None,
    model_fn: ModelFn | None = None,
    data_fn: DataFn | None = None,
    progress: bool = True,
    sink: Callable[[str], None] | None = print,
):
    """Train ``base_config`` with every combination of ``grid`` values, once per seed.

    ``grid``: ``{TrainConfig field: [values]}``, e.g. ``{"lr": [2e-5, 1e-5], "grad_clip":
    [2.0, 3.0], "scheduler_patience": [3, 5]}``. An unknown field raises ``ValueError``; a
    value the config rejects (``lr=-1``) becomes a trial with status ``"failed"`` and the
    ValueError's text in ``error``, and the other trials run.
    ``seeds``: each trial's ``TrainConfig.seed`` (model initialisation and shuffling; the
    reference data set is ``data_seed``'s, the same for every seed unless that is None).
    ``backend``: ``"local"`` (``max_workers`` or ``os.cpu_count()`` processes on this
    machine; with GPUs, trials on device ``"auto"``/``"cuda"`` run in workers pinned to one
    GPU each, ``max_workers`` or one per GPU: ``nbtrain.sweeps.placement``) or ``"ray"``
    (Ray tasks of one CPU each, and one GPU for trials on CUDA, at most ``max_workers`` in flight; if
    Ray is not initialized, ``ray.init()`` connects to the cluster of ``RAY_ADDRESS`` or
    ``ray start``, else starts a local one, left running. Trials write their run folders on
    the machine that runs them: on several machines, put ``out`` on a shared filesystem).
    ``out``: the sweep's folder, one run folder per trial (see the module docstring).
    Calling again with the same arguments and code reuses finished trials.
    ``model_fn(seed) -> nn.Module`` and ``data_fn(seed) -> (train_data, val_data)``: your
    own model and data, as picklable top-level functions (the local backend's workers import
    them by name: a notebook's own functions need Ray or a ``.py`` module). Default: the
    reference experiment. ``progress``: a tqdm bar. ``sink``: start and end lines.

    Returns a pandas DataFrame, one row per trial in plan order: the grid values, ``seed``,
    the run's ``nbtrain.summarize`` numbers (``best_val_loss``, ``best_epoch``,
    ``final_val_loss``, ``grad_norm_growth_p50`` and ``_max`` (gradient growth as defined in
    ``nbtrain.measures``), ``clip_fraction``, ``lr_cuts``, ``final_lr``), ``epochs_done``,
    ``status`` (completed / diverged / failed), ``error``, ``train_time_s`` and ``run_dir``.
    """
    _check_arguments(backend, max_workers, out, model_fn, data_fn)
    grid, seeds = check_grid(grid), check_seeds(seeds)
    code = code_fingerprint()
    trials = plan(base_config, grid, seeds, out, code)
    out, say = Path(out), (sink if sink is not None else (lambda _msg: None))
    fns = callables_of(model_fn, data_fn)
    _write_spec(out, base_config, grid, seeds, fns, code)
    rows, todo = _finished(trials, fns, code)
    say(_start_line(trials, todo, len(seeds), out, backend, max_workers))
    _run_todo(trials, rows, todo, backend, max_workers, model_fn, data_fn, progress)
    table = _table(rows, list(grid))
    atomic_write_text(out / RESULTS_FILE, table.to_csv(index=False))
    counts = table["status"].value_counts()
    say("sweep done: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES) + f"; table in {out / RESULTS_FILE}")
    return table


def load_sweep(out: str | os.PathLike):
    """The table of a sweep folder from its trials' ``done.json`` files (no training).

    Trials without a ``done.json`` (still running, or never run) are left out; finished
    trials are shown whatever code made them.
    """
    out = Path(out)
    spec_path = out / SPEC_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(f"no sweep at {out}: {SPEC_FILE} is missing (run nbtrain.sweep with out={str(out)!r})")
    spec = read_json(spec_path)
    grid = spec.get("grid") or {}
    rows = []
    for trial in plan(TrainConfig.from_dict(spec["base"]), grid, spec["seeds"], out):
        path = Path(trial.run_dir) / DONE_FILE
        if path.is_file():
            rows.append(read_json(path)["row"])
    return _table(rows, list(grid))


__all__ = ["RESULTS_FILE", "SPEC_FILE", "load_sweep", "sweep"]

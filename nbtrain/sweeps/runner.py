"""Grid sweeps: every combination of a few TrainConfig fields, for several seeds, in parallel.

``sweep(base, grid, seeds)`` trains one run per (grid point, seed), each in its own run
folder, and returns one table row per run with the grid values, the seed and the run's
headline numbers (``nbtrain.compare.summarize``). Two backends run the trials:

- ``"local"`` (default, nothing to install): a ``concurrent.futures.ProcessPoolExecutor``
  with the ``spawn`` start method (forking a process that has run torch is unsafe).
- ``"ray"``: one Ray task per trial (``num_cpus=1``) on whatever cluster ``ray.init``
  connects to (``pip install nbtrain[ray]``).

Each trial sets ``torch.set_num_threads(1)`` in its worker process, so both backends give
the same numbers for the same seeds, and N workers share N cores without oversubscribing.

Folder layout, for ``out="runs/grid"`` and ``grid={"lr": [2e-5], "grad_clip": [2.0]}``::

    runs/grid/sweep.json                       what was asked (base config, grid, seeds)
    runs/grid/results.csv                      the table, rewritten at the end of each call
    runs/grid/lr=2e-05_clip=2.0/seed=0/        a run folder: config.json, history.json,
                                               checkpoint.pt, and done.json written last

``done.json`` holds the trial's table row and is written atomically once the trial is over,
so a sweep that was interrupted resumes when called again with the same arguments: trials
with a ``done.json`` for the same config are read back, not retrained, and a trial that
stopped midway continues from its last checkpoint (the trainer's resume is exact).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..training.config import TrainConfig
from ..files import atomic_write_text, from_json_safe, to_json_safe

DONE_FILE = "done.json"
SPEC_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
BACKENDS = ("local", "ray")
STATUSES = ("completed", "diverged", "failed")

# Short names for the usual grid axes in folder names; other fields keep their own name.
SHORT_NAMES = {
    "lr": "lr",
    "grad_clip": "clip",
    "scheduler_patience": "pat",
    "batch_size": "bs",
    "grad_accum_steps": "accum",
    "scheduler": "sched",
    "weight_decay": "wd",
}

# Table columns after the grid values, in order. ``train_time_s`` measures the machine,
# not the training: it differs between identical runs (leave it out of comparisons).
SUMMARY_COLUMNS = (
    "best_val_loss",
    "best_epoch",
    "final_val_loss",
    "grad_norm_growth_p50",
    "grad_norm_growth_max",
    "clip_fraction",
    "lr_cuts",
    "final_lr",
    "epochs_done",
)
TRAILING_COLUMNS = ("status", "error", "train_time_s", "run_dir")
TIMING_COLUMNS = ("train_time_s",)

ModelFn = Callable[[int], Any]
DataFn = Callable[[int], tuple]


# -- the plan ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One (grid point, seed): the values to set on the base config and where it runs."""

    params: dict  # grid field -> value, in grid order
    seed: int
    run_dir: str
    base: dict  # the base config as a dict (picklable, JSON-safe)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return "".join(ch if ch.isalnum() or ch in "-+._" else "-" for ch in text)


def config_label(params: Mapping[str, Any]) -> str:
    """Folder name of a grid point: ``lr=2e-05_clip=2.0_pat=5`` (``"base"`` for an empty grid)."""
    if not params:
        return "base"
    return "_".join(f"{SHORT_NAMES.get(k, k)}={_format_value(v)}" for k, v in params.items())


def _check_grid(grid: Any) -> dict[str, list]:
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of TrainConfig field -> list of values, got {type(grid).__name__}")
    fields = set(TrainConfig.__dataclass_fields__)
    out: dict[str, list] = {}
    for key, values in grid.items():
        if key == "seed":
            raise ValueError("grid must not contain 'seed': pass the seeds as seeds=[...]")
        if key not in fields:
            raise ValueError(
                f"grid key {key!r} is not a TrainConfig field; choose from: {', '.join(sorted(fields - {'seed'}))}"
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"grid[{key!r}] must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"grid[{key!r}] is empty: give at least one value")
        labels = [_format_value(v) for v in values]
        if len(set(labels)) != len(labels):
            raise ValueError(f"grid[{key!r}] has repeated values: {values!r}")
        out[key] = values
    return out


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a list of ints, got {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=[0]")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be ints >= 0, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has repeated values: {seeds!r}")
    return seeds


def plan(base_config: TrainConfig, grid: Mapping[str, Sequence] | None, seeds: Sequence[int], out) -> list[Trial]:
    """The trials of a sweep, grid-point major and seed minor (nothing is run)."""
    if not isinstance(base_config, TrainConfig):
        raise TypeError(f"base_config must be a TrainConfig, got {type(base_config).__name__}")
    grid = _check_grid(grid)
    seeds = _check_seeds(seeds)
    out = Path(out)
    base = base_config.to_dict()
    trials = []
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid.keys(), combo))
        folder = out / config_label(params)
        for seed in seeds:
            trials.append(Trial(params=params, seed=seed, run_dir=str(folder / f"seed={seed}"), base=base))
    return trials


# -- one trial (runs in a worker process) --------------------------------------------------
def _trial_config(trial: Trial) -> TrainConfig:
    base = TrainConfig.from_dict(trial.base)
    label = config_label(trial.params)
    name = f"{base.name + ' ' if base.name else ''}{label} seed={trial.seed}"
    return base.replace(**trial.params, seed=trial.seed, name=name)


def _callable_name(fn: Any) -> str | None:
    if fn is None:
        return None
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None) or type(target).__module__
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qual}"


def _empty_row(trial: Trial) -> dict:
    row: dict[str, Any] = dict(trial.params)
    row["seed"] = trial.seed
    for c in SUMMARY_COLUMNS:
        row[c] = None
    row.update(status="failed", error="", train_time_s=None, run_dir=trial.run_dir)
    return row


def _summary_row(trial: Trial, history, config: TrainConfig) -> dict:
    from ..diagnosis.summary import summarize

    s = summarize(history, config)
    row = _empty_row(trial)
    for key in ("best_val_loss", "best_epoch", "final_val_loss", "grad_norm_growth_p50",
                "grad_norm_growth_max", "clip_fraction", "lr_cuts", "final_lr"):
        row[key] = s.get(key)
    row["epochs_done"] = len(history.epochs)
    return row


def _read_done(run_dir: Path, config: dict | None, fns: dict) -> dict | None:
    """The recorded row of a finished trial, or None if the trial must (re)run."""
    path = run_dir / DONE_FILE
    if not path.is_file():
        return None
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(done, dict) or "row" not in done:
        return None
    if done.get("config") != config or done.get("callables") != fns:
        return None  # a different experiment used this folder before: run again
    return done["row"]


def run_trial(trial: Trial, model_fn: ModelFn | None = None, data_fn: DataFn | None = None,
              single_thread: bool = True) -> dict:
    """Train one trial into its run folder and return its table row (never raises for the trial's own errors).

    A config that fails validation gives status ``"failed"`` with the ValueError's text;
    a non-finite loss or gradient gives ``"diverged"`` with the trainer's message. Both are
    recorded in ``done.json``. An unexpected exception is reported as ``"failed"`` too, but
    not marked done, so the next call of the same sweep tries that trial again.
    """
    import torch

    from ..training.trainer import CHECKPOINT_FILE, load_checkpoint, train

    if (model_fn is None) != (data_fn is None):
        raise ValueError("give both model_fn and data_fn, or neither (the reference experiment)")
    if single_thread:
        torch.set_num_threads(1)
    run_dir = Path(trial.run_dir)
    fns = {"model_fn": _callable_name(model_fn), "data_fn": _callable_name(data_fn)}
    row = _empty_row(trial)
    try:
        config = _trial_config(trial)
    except (ValueError, TypeError) as exc:
        row["error"] = str(exc)
        _write_done(run_dir, None, fns, row)
        return row
    cfg_dict = config.to_dict()
    t0 = time.perf_counter()
    try:
        model = model_fn(trial.seed) if model_fn is not None else None
        train_data = val_data = None
        if data_fn is not None:
            pair = data_fn(trial.seed)
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"data_fn must return (train_data, val_data), got {type(pair).__name__}")
            train_data, val_data = pair
        resume = None
        ckpt = run_dir / CHECKPOINT_FILE
        if ckpt.is_file():
            try:
                same = load_checkpoint(ckpt)["config"] == cfg_dict
            except (ValueError, KeyError):
                same = False
            resume = ckpt if same else None
        run = train(config, model, train_data, val_data, out=run_dir, resume=resume, sink=None)
    except (ValueError, TypeError) as exc:  # e.g. a model/data mismatch the trainer rejects
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["train_time_s"] = time.perf_counter() - t0
        _write_done(run_dir, cfg_dict, fns, row)
        return row
    except Exception as exc:  # anything else: report, but let a re-run try again
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row["error"] = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        row["train_time_s"] = time.perf_counter() - t0
        return row
    row = _summary_row(trial, run.history, config)
    row["train_time_s"] = time.perf_counter() - t0
    if run.status == "diverged":
        row["status"], row["error"] = "diverged", run.message
    elif run.status == "completed":
        row["status"] = "completed"
    else:  # "stopped": nothing in a sweep asks for it, but report it plainly
        row["status"], row["error"] = "failed", run.message or f"run ended with status {run.status}"
    _write_done(run_dir, cfg_dict, fns, row)
    return row


def _write_done(run_dir: Path, config: dict | None, fns: dict, row: dict) -> None:

    payload = {"format": "nbtrain.sweep-trial/1", "config": config, "callables": fns, "row": row}
    atomic_write_text(run_dir / DONE_FILE, json.dumps(to_json_safe(payload), indent=1) + "\n")


def _decode_row(row: dict) -> dict:

    return from_json_safe(row)


# -- backends ------------------------------------------------------------------------------
def _failed_row(trial: Trial, exc: BaseException) -> dict:
    row = _empty_row(trial)
    row["error"] = f"worker failed: {type(exc).__name__}: {exc}"
    if type(exc).__name__ == "BrokenProcessPool":
        row["error"] += (" (a worker process died or could not start: out of memory? In a script, call "
                         "sweep() under `if __name__ == '__main__':`, which spawned workers need)")
    return row


def _run_local(trials: list[Trial], model_fn, data_fn, workers: int, on_done: Callable[[int, dict], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    finished = False
    try:
        futures = {pool.submit(run_trial, t, model_fn, data_fn, True): i for i, t in enumerate(trials)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # the worker process died (killed, out of memory, ...)
                row = _failed_row(trials[i], exc)
            on_done(i, row)
        finished = True
    finally:
        # On an interrupt, queued trials are cancelled and this returns at once; the trials
        # already running finish in the background and write their done.json as usual.
        pool.shutdown(wait=finished, cancel_futures=True)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "backend='ray' needs Ray: pip install nbtrain[ray] (or pip install ray), "
            "or use backend='local'"
        ) from exc
    return ray


def _run_ray(trials: list[Trial], model_fn, data_fn, workers: int | None, on_done) -> None:
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init()
    remote_trial = ray.remote(num_cpus=1)(run_trial)
    model_ref = ray.put(model_fn)
    data_ref = ray.put(data_fn)
    limit = workers or len(trials)
    pending: dict = {}
    queue = list(enumerate(trials))
    try:
        while queue or pending:
            while queue and len(pending) < limit:
                i, t = queue.pop(0)
                pending[remote_trial.remote(t, model_ref, data_ref, True)] = i
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:  # the task's worker died, or the cluster lost it
                    row = _failed_row(trials[i], exc)
                on_done(i, row)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise


# -- the public entry point ------------------------------------------------------------------
def _check_callable(name: str, fn: Any, backend: str) -> None:
    if fn is None:
        return
    if not callable(fn):
        raise TypeError(f"{name} must be a callable (seed -> ...), got {type(fn).__name__}")
    if backend != "local":
        return  # Ray pickles functions defined in a notebook by value (cloudpickle)
    target = getattr(fn, "func", fn)
    module = getattr(target, "__module__", None)
    main = sys.modules.get("__main__")
    if getattr(target, "__qualname__", "").count("<lambda>") or "<locals>" in getattr(target, "__qualname__", ""):
        raise TypeError(
            f"{name} {getattr(target, '__qualname__', target)!r} is a lambda or a nested function: the local "
            "backend's worker processes cannot import it. Define it at the top level of a module (.py file)"
        )
    if module == "__main__" and not hasattr(main, "__file__"):
        raise TypeError(
            f"{name} {getattr(target, '__qualname__', target)!r} is defined in this notebook or interactive "
            "session: the local backend's worker processes cannot import it. Put it in a .py module next to the "
            "notebook and import it from there, or use backend='ray' (which ships notebook functions by value)"
        )


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
    ``backend``: ``"local"`` (processes on this machine, ``max_workers`` or
    ``os.cpu_count()`` of them) or ``"ray"`` (Ray tasks of one CPU each; if Ray is not
    initialized yet, ``ray.init()`` is called with its defaults, which connects to the
    cluster named by ``RAY_ADDRESS`` or started with ``ray start`` on this machine, and
    otherwise starts a local one, left running afterwards. Call ``ray.init(...)`` first to
    choose. ``max_workers`` then caps the tasks in flight. The trials write their run
    folders on the machine that runs them: on a cluster of several machines, put ``out``
    on a shared filesystem, or re-runs cannot find finished trials; the table itself
    always comes back).
    ``out``: the sweep's folder, one run folder per trial (see the module docstring).
    Calling again with the same arguments reuses finished trials.
    ``model_fn(seed) -> nn.Module`` and ``data_fn(seed) -> (train_data, val_data)``: to
    sweep your own model; both must be picklable top-level functions (the local backend's
    workers import them by module and name, so a notebook's own functions need Ray or a
    ``.py`` module). Default: the reference experiment.
    ``progress``: one tqdm bar over trials. ``sink``: start and end lines (``None`` silences).

    Returns a pandas DataFrame, one row per trial in plan order: the grid values, ``seed``,
    ``best_val_loss``, ``best_epoch``, ``final_val_loss``, ``grad_norm_growth_p50`` (mean
    per-epoch median norm over the last third of epochs / epoch 0's), ``grad_norm_growth_max``
    (the same for the per-epoch maximum), ``clip_fraction`` (share of all steps clipped),
    ``lr_cuts``, ``final_lr``, ``epochs_done``, ``status`` (completed / diverged / failed),
    ``error``, ``train_time_s`` and ``run_dir``.
    """
    import pandas as pd

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ValueError(f"max_workers must be a positive int or None, got {max_workers!r}")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}: {out!r}")
    _check_callable("model_fn", model_fn, backend)
    _check_callable("data_fn", data_fn, backend)
    if (model_fn is None) != (data_fn is None):
        given, missing = ("model_fn", "data_fn") if data_fn is None else ("data_fn", "model_fn")
        raise ValueError(f"{given} was given without {missing}: give both (your own model and data) "
                         "or neither (the reference experiment)")
    if backend == "ray":
        _import_ray()
    grid = _check_grid(grid)
    seeds = _check_seeds(seeds)
    trials = plan(base_config, grid, seeds, out)
    out = Path(out)
    say = sink if sink is not None else (lambda _msg: None)
    fns = {"model_fn": _callable_name(model_fn), "data_fn": _callable_name(data_fn)}
    _write_spec(out, base_config, grid, list(seeds), fns)

    rows: list[dict | None] = [None] * len(trials)
    todo: list[int] = []
    for i, t in enumerate(trials):
        try:
            cfg = _trial_config(t).to_dict()
        except (ValueError, TypeError):
            cfg = None
        done = _read_done(Path(t.run_dir), cfg, fns)
        if done is not None:
            rows[i] = _decode_row(done)
        else:
            todo.append(i)
    workers = max_workers or os.cpu_count() or 1
    if not todo:
        where = "nothing to train"
    elif backend == "local":
        where = f"local backend, {min(workers, len(todo))} worker process{'es' if min(workers, len(todo)) > 1 else ''}"
    else:
        where = "ray backend" + (f", at most {max_workers} tasks at a time" if max_workers else "")
    say(f"sweep: {len(trials)} trials ({len(trials) // len(seeds)} grid points x {len(seeds)} seeds) in {out}; "
        f"{len(trials) - len(todo)} already done, {len(todo)} to run ({where})")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(trials), initial=len(trials) - len(todo), desc="sweep", unit="trial")

    def on_done(j: int, row: dict) -> None:
        rows[todo[j]] = row
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"last: {row['status']}", refresh=False)

    try:
        if todo:
            pending = [trials[i] for i in todo]
            if backend == "local":
                _run_local(pending, model_fn, data_fn, min(workers, len(pending)), on_done)
            else:
                _run_ray(pending, model_fn, data_fn, max_workers, on_done)
    finally:
        if bar is not None:
            bar.close()

    table = _table(rows, list(grid))
    atomic_write_text(out / RESULTS_FILE, table.to_csv(index=False))
    counts = table["status"].value_counts()
    say("sweep done: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES) + f"; table in {out / RESULTS_FILE}")
    return table


def _table(rows: Sequence[dict], grid_keys: Sequence[str]):
    import pandas as pd

    columns = [*grid_keys, "seed", *SUMMARY_COLUMNS, *TRAILING_COLUMNS]
    df = pd.DataFrame(list(rows), columns=columns)
    for c in ("best_val_loss", "final_val_loss", "grad_norm_growth_p50", "grad_norm_growth_max",
              "clip_fraction", "final_lr", "train_time_s"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in ("best_epoch", "lr_cuts", "epochs_done"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["error"] = df["error"].fillna("").astype(str)
    return df


def _write_spec(out: Path, base: TrainConfig, grid: dict, seeds: list, fns: dict) -> None:

    spec = {"format": "nbtrain.sweep/1", "base": base.to_dict(), "grid": grid, "seeds": seeds, "callables": fns}
    try:
        text = json.dumps(to_json_safe(spec), indent=1) + "\n"
    except TypeError:  # grid values JSON cannot hold: keep their repr
        spec["grid"] = {k: [repr(v) for v in vs] for k, vs in grid.items()}
        text = json.dumps(to_json_safe(spec), indent=1) + "\n"
    atomic_write_text(out / SPEC_FILE, text)


def load_sweep(out: str | os.PathLike):
    """The table of a sweep folder from its trials' ``done.json`` files (no training).

    Trials without a ``done.json`` (still running, or never run) are left out.
    """
    out = Path(out)
    spec_path = out / SPEC_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(f"no sweep at {out}: {SPEC_FILE} is missing (run nbtrain.sweep with out={str(out)!r})")

    spec = from_json_safe(json.loads(spec_path.read_text(encoding="utf-8")))
    grid = spec.get("grid") or {}
    rows = []
    for trial in plan(TrainConfig.from_dict(spec["base"]), grid, spec["seeds"], out):
        path = Path(trial.run_dir) / DONE_FILE
        if path.is_file():
            rows.append(from_json_safe(json.loads(path.read_text(encoding="utf-8")))["row"])
    return _table(rows, list(grid))


# -- command line ------------------------------------------------------------------------------
def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``nbtrain sweep CONFIG.json`` to an argparse subparsers object (see ``sweep_command``)."""
    p = subparsers.add_parser("sweep", help="train a grid of configs x seeds in parallel and print the table",
                              description=sweep_command.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="CONFIG.json", help="the sweep file (format below)")
    p.add_argument("--backend", choices=BACKENDS, help="override the file's backend")
    p.add_argument("--out", help="override the file's output folder")
    p.add_argument("--max-workers", dest="max_workers", type=int, help="parallel trials (default: one per core)")
    p.add_argument("--epochs", type=int, help="override the base config's epochs")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.set_defaults(func=sweep_command)
    return p


def load_sweep_spec(path: str | os.PathLike) -> dict:
    """Read and check a sweep file; returns ``{"base": TrainConfig, "grid", "seeds", "backend", "out"}``."""
    from ..training import presets

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no sweep file at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"sweep file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"sweep file {path} must hold a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"base", "grid", "seeds", "backend", "out", "max_workers"})
    if unknown:
        raise ValueError(f"sweep file {path}: unknown key(s) {', '.join(unknown)}; "
                         "expected base, grid, seeds, backend, out, max_workers")
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"sweep file {path}: 'base' must be an object of TrainConfig fields, got {base!r}")
    base = dict(base)
    preset = base.pop("preset", None)
    config = presets.get(preset) if preset is not None else TrainConfig()
    config = config.replace(**base) if base else config
    return {
        "base": config,
        "grid": data.get("grid", {}),
        "seeds": data.get("seeds", [0]),
        "backend": data.get("backend", "local"),
        "out": data.get("out") or str(Path("runs") / path.stem),
        "max_workers": data.get("max_workers"),
    }


def sweep_command(args: argparse.Namespace) -> int:
    """Run a sweep described by a JSON file and print its table.

    The file::

        {
          "base": {"preset": "round1", "epochs": 7},
          "grid": {"lr": [2e-5, 1e-5], "grad_clip": [2.0, 3.0], "scheduler_patience": [3, 5]},
          "seeds": [0, 1, 2],
          "backend": "local",
          "out": "runs/round1-grid",
          "max_workers": null
        }

    ``base``: TrainConfig fields; ``"preset"`` (round1, round2 or a fallback's name) starts
    from a preset and the other fields change it (default: TrainConfig's defaults).
    ``grid``: TrainConfig field -> list of values. ``seeds``: list of ints (default [0]).
    ``backend``: "local" (default) or "ray". ``out``: the sweep folder (default
    runs/<file name without .json>). ``max_workers``: parallel trials (default: one per
    core). Re-running the same file resumes: finished trials are read back, not retrained.
    Exit status: 0 if every trial completed, 1 if any diverged or failed.
    """
    import pandas as pd

    spec = load_sweep_spec(args.spec)
    base = spec["base"]
    if getattr(args, "epochs", None) is not None:
        base = base.replace(epochs=args.epochs)
    table = sweep(
        base,
        spec["grid"],
        spec["seeds"],
        backend=getattr(args, "backend", None) or spec["backend"],
        out=getattr(args, "out", None) or spec["out"],
        max_workers=getattr(args, "max_workers", None) or spec["max_workers"],
        progress=getattr(args, "progress", False),
    )
    shown = table.drop(columns=["run_dir", *TIMING_COLUMNS])
    shown["error"] = shown["error"].str.slice(0, 60)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0 if (table["status"] == "completed").all() else 1


__all__ = [
    "Trial",
    "add_sweep_parser",
    "config_label",
    "load_sweep",
    "load_sweep_spec",
    "plan",
    "run_trial",
    "sweep",
    "sweep_command",
]

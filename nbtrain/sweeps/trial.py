"""One trial of a sweep, run in a worker process: train into its run folder, record ``done.json``.

``done.json`` is written last, atomically (``nbtrain.files.write_json``), and holds the
trial's table row with what it was made from: the trial's config, the model and data
functions' qualified names and the code fingerprint
(``nbtrain.training.runfolder.code_fingerprint``, the package version and source; the one
the sweep computed, ``Trial.code``, else the worker's). A later sweep reads a trial back
only when all three match its own; otherwise it trains the trial again.

A trial that stopped midway resumes from its last checkpoint (the trainer's resume is
exact) only when the checkpoint was written for the same config by the same code: the
trial records the fingerprint in its history's ``meta["code"]``, which every checkpoint
carries. A checkpoint of other code is ignored and the trial trains from scratch.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from ..files import read_json, write_json
from ..training.callbacks import Callback
from ..training.config import TrainConfig
from ..training.runfolder import CHECKPOINT_FILE, code_fingerprint, load_checkpoint
from .plan import DataFn, ModelFn, Trial, callable_name, trial_config

DONE_FILE = "done.json"
DONE_FORMAT = "nbtrain.sweep-trial/2"  # /2: records the code fingerprint
STATUSES = ("completed", "diverged", "failed")

# Table columns after the grid values and the seed, in order. ``train_time_s`` measures the
# machine, not the training: it differs between identical runs (leave it out of comparisons).
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


def callables_of(model_fn: ModelFn | None, data_fn: DataFn | None) -> dict:
    """What ``done.json`` records of the model and data functions: their qualified names."""
    return {"model_fn": callable_name(model_fn), "data_fn": callable_name(data_fn)}


def empty_row(trial: Trial) -> dict:
    """The row of a trial without numbers (status ``"failed"``, no error text yet)."""
    row: dict[str, Any] = dict(trial.params)
    row["seed"] = trial.seed
    for c in SUMMARY_COLUMNS:
        row[c] = None
    row.update(status="failed", error="", train_time_s=None, run_dir=trial.run_dir)
    return row


def worker_failed_row(trial: Trial, cause: BaseException | str) -> dict:
    """The row of a trial whose worker died or raised (nothing recorded: the next call tries it again).

    ``cause``: what the backend knows of it, as text (the exit code or signal of a local worker,
    with its last error line; the exception a task raised) or as the exception itself.
    """
    row = empty_row(trial)
    text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
    row["error"] = f"worker failed: {text}"
    return row


def _summary_row(trial: Trial, run, config: TrainConfig) -> dict:
    from ..diagnosis.summary import summarize

    s = summarize(run.history, config)
    row = empty_row(trial)
    for key in SUMMARY_COLUMNS[:-1]:
        row[key] = s.get(key)
    row["epochs_done"] = len(run.history.epochs)
    if run.status == "diverged":
        row["status"], row["error"] = "diverged", run.message
    elif run.status == "completed":
        row["status"] = "completed"
    else:  # "stopped": nothing in a sweep asks for it, but report it plainly
        row["status"], row["error"] = "failed", run.message or f"run ended with status {run.status}"
    return row


def read_done(run_dir: str | Path, config: dict | None, callables: dict, code: str | None = None) -> dict | None:
    """The recorded row of a finished trial, or None if the trial must (re)run.

    None when ``done.json`` is missing or unreadable, or was written for another config,
    other model/data functions or other code (``code``: default the current fingerprint).
    """
    path = Path(run_dir) / DONE_FILE
    if not path.is_file():
        return None
    try:
        done = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(done, dict) or "row" not in done:
        return None
    code = code_fingerprint() if code is None else code
    if done.get("config") != config or done.get("callables") != callables or done.get("code") != code:
        return None  # another experiment, or older code, used this folder: run again
    return done["row"]


def write_done(run_dir: Path, config: dict | None, callables: dict, code: str, row: dict) -> None:
    """Record a finished trial (see the module docstring)."""
    payload = {"format": DONE_FORMAT, "code": code, "config": config, "callables": callables, "row": row}
    write_json(Path(run_dir) / DONE_FILE, payload, indent=1)


class _RecordCode(Callback):
    """Puts the code fingerprint in the history's meta, so every checkpoint says which code wrote it."""

    def __init__(self, code: str):
        self.code = code

    def on_train_begin(self, trainer) -> None:
        trainer.history.meta["code"] = self.code


def resume_point(run_dir: Path, config: dict, code: str) -> Path | None:
    """The trial's checkpoint if the same config and the same code wrote it, else None (train from scratch)."""
    ckpt = Path(run_dir) / CHECKPOINT_FILE
    if not ckpt.is_file():
        return None
    try:
        state = load_checkpoint(ckpt)
        same = state["config"] == config and state["history"]["meta"].get("code") == code
    except (ValueError, KeyError, TypeError, AttributeError):
        same = False
    return ckpt if same else None


def _model_and_data(trial: Trial, model_fn, data_fn) -> tuple:
    if model_fn is None:
        return None, None, None
    model = model_fn(trial.seed)
    pair = data_fn(trial.seed)
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError(f"data_fn must return (train_data, val_data), got {type(pair).__name__}")
    return model, pair[0], pair[1]


def _train(trial: Trial, config: TrainConfig, model_fn, data_fn, code: str):
    from ..training.trainer import train

    model, train_data, val_data = _model_and_data(trial, model_fn, data_fn)
    run_dir = Path(trial.run_dir)
    resume = resume_point(run_dir, config.to_dict(), code)
    return train(config, model, train_data, val_data, out=run_dir, resume=resume, sink=None,
                 callbacks=[_RecordCode(code)])


def run_trial(trial: Trial, model_fn: ModelFn | None = None, data_fn: DataFn | None = None,
              single_thread: bool = True) -> dict:
    """Train one trial into its run folder and return its table row (never raises for the trial's own errors).

    A config that fails validation gives status ``"failed"`` with the ValueError's text;
    a non-finite loss or gradient gives ``"diverged"`` with the trainer's message. Both are
    recorded in ``done.json``. An unexpected exception is reported as ``"failed"`` too, but
    not marked done, so the next call of the same sweep tries that trial again.
    """
    import torch

    if (model_fn is None) != (data_fn is None):
        raise ValueError("give both model_fn and data_fn, or neither (the reference experiment)")
    if single_thread:
        torch.set_num_threads(1)
    run_dir, code, fns = Path(trial.run_dir), trial.code or code_fingerprint(), callables_of(model_fn, data_fn)
    row = empty_row(trial)
    try:
        config = trial_config(trial)
    except (ValueError, TypeError) as exc:
        row["error"] = str(exc)
        write_done(run_dir, None, fns, code, row)
        return row
    t0 = time.perf_counter()
    try:
        run = _train(trial, config, model_fn, data_fn, code)
    except (ValueError, TypeError) as exc:  # e.g. a model/data mismatch the trainer rejects
        row["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # anything else: report, but let a re-run try again
        where = traceback.extract_tb(exc.__traceback__)[-1]
        row["error"] = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        row["train_time_s"] = time.perf_counter() - t0
        return row
    else:
        row = _summary_row(trial, run, config)
    row["train_time_s"] = time.perf_counter() - t0
    write_done(run_dir, config.to_dict(), fns, code, row)
    return row


__all__ = [
    "DONE_FILE",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "TIMING_COLUMNS",
    "TRAILING_COLUMNS",
    "callables_of",
    "empty_row",
    "read_done",
    "resume_point",
    "run_trial",
    "worker_failed_row",
    "write_done",
]

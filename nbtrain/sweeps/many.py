"""Independent trainings of the reference experiment side by side: ``train_many``.

``train_many({"round 1": ROUND1, "only lr 1e-5": ...}, out="runs")`` does what the notebooks
did one run after another, ``{label: nbtrain.train(cfg, out=folder, reuse=True)}``, with the
runs that must train spread over the sweep backends' workers (``nbtrain.sweeps.backends``:
the local process pool by default, or Ray), one torch thread each:

- each run's folder is ``Path(out) / (config.name or slug(label))`` (``run_folder``), the
  folder the notebooks have always used, so their cached runs are found again;
- a folder that already holds a completed run of the same config, reference data and code
  (``runfolder.is_complete_run``, the test ``train(..., reuse=True)`` makes) is loaded here with
  ``train(config, out=folder, reuse=True)``, not trained again; with ``reuse=False`` every run
  trains afresh;
- every other run trains in a worker with ``train(config, out=folder, reuse=reuse)``, and the
  worker sends back the ``Run`` that call returned (history, config, the trained model, how it
  ended) with its log lines.

A worker runs the same code on the same data with one thread, as ``train`` does in a
process set to one thread: the results are identical to running the configs one after
another there (``tests/test_train_many.py`` checks histories and weights).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Mapping

from ..training.config import TrainConfig
from ..training.records import Run
from ..training.runfolder import is_complete_run
from .backends import BACKENDS, CALLERS, import_ray
from .placement import local_plan
from .plan import Trial

Sink = Callable[[str], None]


def slug(label: str) -> str:
    """A folder name for ``label``: runs of characters other than letters, digits, ``-``, ``_`` and
    ``.`` become one ``_``, without one at either end (``"only lr 1e-5"`` -> ``"only_lr_1e-5"``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")


def run_folder(out: str | os.PathLike, label: str, config: TrainConfig) -> Path:
    """Where ``train_many`` trains ``config``: ``Path(out) / (config.name or slug(label))``."""
    name = config.name or slug(label)
    if not name or name in (".", ".."):
        raise ValueError(f"configs[{label!r}] has no name and its label gives no folder name: "
                         "give the config a name (config.replace(name=...)) or the label letters")
    return Path(out) / name


def train_in_worker(config: TrainConfig, out: str, reuse: bool) -> tuple[Run, list[str]]:
    """One run, in a worker (one torch thread): what ``train`` returns, and its log lines."""
    import torch

    from ..training.trainer import train

    torch.set_num_threads(1)
    lines: list[str] = []
    run = train(config, out=out, reuse=reuse, sink=lines.append)
    return run, lines


def _check(configs, out, backend, max_workers) -> dict[str, TrainConfig]:
    if not isinstance(configs, Mapping):
        raise TypeError(f"configs must be a mapping of label -> TrainConfig, got {type(configs).__name__}")
    for label, config in configs.items():
        if not isinstance(label, str):
            raise ValueError(f"configs' labels must be str, got {label!r}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"configs[{label!r}] must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}: {out!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ValueError(f"max_workers must be a positive int or None, got {max_workers!r}")
    if backend == "ray":
        import_ray()
    return dict(configs)


def _folders(configs: dict[str, TrainConfig], out) -> dict[str, Path]:
    """Each label's run folder; two labels may share one only with the same config (it trains once)."""
    folders: dict[str, Path] = {}
    owner: dict[Path, str] = {}
    for label, config in configs.items():
        folder = run_folder(out, label, config)
        first = owner.setdefault(folder, label)
        if configs[first] != config:
            raise ValueError(f"configs[{first!r}] and configs[{label!r}] differ but would share the run folder "
                             f"{folder}: give them different names")
        folders[label] = folder
    return folders


def _reusable(config: TrainConfig, folder: Path) -> bool:
    """Whether ``train(config, out=folder, reuse=True)`` would load ``folder`` (the reference experiment's data)."""
    from ..reference.data import REFERENCE_TASK

    return is_complete_run(folder, config, REFERENCE_TASK.fingerprint())


def _trials(todo: dict[Path, tuple[str, TrainConfig]]) -> list[Trial]:
    """Each run as a one-trial plan (its device decides where the backends place it)."""
    return [Trial({}, config.seed, str(folder), config.to_dict()) for folder, (_, config) in todo.items()]


def _start_line(n: int, todo: list[Trial], out, backend: str, max_workers: int | None) -> str:
    if not todo:
        where = "nothing to train"
    elif backend == "local":
        where = "local backend, " + local_plan(todo, max_workers).describe()
    else:
        where = "ray backend" + (f", at most {max_workers} tasks at a time" if max_workers else "")
    return f"train_many: {n} runs in {out}; {n - len(todo)} reused, {len(todo)} to train ({where})"


def _train_todo(todo: dict[Path, tuple[str, TrainConfig]], reuse: bool, backend: str, max_workers: int | None,
                say: Sink) -> dict[Path, Run]:
    """Train the runs of ``todo`` (folder -> (label, config)) on the backend; their Runs by folder."""
    folders = list(todo)
    trials = _trials(todo)
    calls = [(train_in_worker, (todo[f][1], str(f), reuse)) for f in folders]
    runs: dict[Path, Run] = {}
    failed: list[str] = []

    def on_result(i: int, ok: bool, value) -> None:
        label = todo[folders[i]][0]
        if not ok:
            failed.append(f"{label!r}: {value}")
            say(f"{label}: failed: {value}")
            return
        run, lines = value
        for line in lines:
            say(f"{label}: {line}")
        runs[folders[i]] = run

    CALLERS[backend](calls, trials, max_workers, on_result)
    if failed:
        raise RuntimeError(f"train_many: {len(failed)} of {len(folders)} runs did not finish "
                           f"(the others are saved and will be reused): {'; '.join(failed)}")
    return runs


def train_many(configs: Mapping[str, TrainConfig], out: str | os.PathLike, *, reuse: bool = True,
               backend: str = "local", max_workers: int | None = None, sink: Sink | None = None) -> dict[str, Run]:
    """Train several configs of the reference experiment side by side; ``{label: Run}`` in ``configs``' order.

    ``configs``: label -> ``TrainConfig``. ``out``: the folder of the run folders (each
    ``Path(out) / (config.name or slug(label))``). ``reuse``: load a folder that holds a
    completed run of the same config made by the same code, as ``train(..., reuse=True)`` does.
    ``backend``: ``"local"`` (``max_workers`` or one worker per CPU core, at most one per run;
    with GPUs, runs on ``"auto"``/``"cuda"`` get one worker per GPU) or ``"ray"``.
    ``sink``: the start line and each trained run's log lines, prefixed with its label, as
    each run ends (None: silent).

    Each ``Run`` is what ``nbtrain.train(config, out=folder, reuse=reuse)`` returns for it (see
    the module docstring). A run whose worker failed raises ``RuntimeError`` naming it and the
    cause, after the other runs have finished (they are saved: a second call reuses them).
    """
    configs = _check(configs, out, backend, max_workers)
    from ..training.trainer import train

    say = sink if sink is not None else (lambda _line: None)
    folders = _folders(configs, out)
    unique: dict[Path, tuple[str, TrainConfig]] = {}
    for label, folder in folders.items():
        unique.setdefault(folder, (label, configs[label]))  # a shared folder: its first label
    todo = {f: lc for f, lc in unique.items() if not (reuse and _reusable(lc[1], f))}
    say(_start_line(len(unique), _trials(todo), out, backend, max_workers))
    runs = _train_todo(todo, reuse, backend, max_workers, say) if todo else {}
    for folder, (label, config) in unique.items():
        if folder not in runs:
            runs[folder] = train(config, out=folder, reuse=True, sink=sink)
    return {label: runs[folders[label]] for label in configs}


__all__ = ["run_folder", "slug", "train_in_worker", "train_many"]

"""One entry for the command line and comparisons: a run folder or any other log, as a LoadedRun."""

from __future__ import annotations

import os
from pathlib import Path

from ..training.runfolder import HISTORY_FILE, LoadedRun, load_run
from .reader import read_log

# file names that say nothing about the run: such a log is named after its folder
_GENERIC_NAMES = ("trainer_state.json", "metrics.csv", "history.json")


def load_log(path: str | os.PathLike, format: str = "auto") -> LoadedRun:
    """An nbtrain run folder through ``load_run`` (with its ``config.json``), anything else
    through ``read_log`` (``config`` None: ``meta["config"]`` holds what the log states).

    A missing path without a suffix goes to ``load_run`` too, so its error is the run
    folder's (``RunFolderError``: "... does not exist"); a missing file's is
    ``FileNotFoundError``. The name: the run's config name, else the
    folder's name, else the file's stem (its folder's name for ``trainer_state.json``,
    ``metrics.csv`` and ``history.json``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a run folder or a log file, got {type(path).__name__}: {path!r}")
    p = Path(path)
    run_folder = p.is_dir() and (p / HISTORY_FILE).is_file()
    missing_folder = not p.exists() and not p.suffix
    if format in ("auto", "nbtrain", "nbtrain-sweep-trial") and (missing_folder or run_folder):
        return load_run(p)
    history = read_log(p, format=format)
    if p.is_dir():
        name = p.name
    else:
        name = p.parent.name if p.name in _GENERIC_NAMES else p.stem
    return LoadedRun(name=name or str(p), path=p, config=None, history=history)


__all__ = ["load_log"]

"""Run folders: the files a run writes, checkpoints, and reading a folder back.

A run folder (``nbtrain.train(..., out=...)``) holds ``config.json``, ``history.json``,
``checkpoint.pt`` (written after every epoch) and ``status.json`` (written at the end).
Checkpoints are written atomically and loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write
from .config import TrainConfig
from .history import History

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
CHECKPOINT_FORMAT = "nbtrain.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash midway leaves the previous checkpoint untouched.
    """
    import torch

    return atomic_write(path, lambda fh: torch.save(state, fh), binary=True)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by nbtrain (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(f"checkpoint {path} could not be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not an nbtrain checkpoint")
    return state




class RunFolderError(ValueError):
    """A run folder that is missing, incomplete or unreadable."""


@dataclass
class LoadedRun:
    name: str  # the config's name, else the folder's name
    path: Path
    config: TrainConfig | None
    history: History


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Read a run folder. ``config.json`` is optional; ``history.json`` is not."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a path, got {type(run_dir).__name__}: {run_dir!r}")
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"run folder {path} does not exist (or is not a folder): give the folder that "
                             "`nbtrain train --out` wrote")
    hist_path = path / HISTORY_FILE
    if not hist_path.is_file():
        raise RunFolderError(f"run folder {path} has no {HISTORY_FILE}: the run wrote no completed epoch yet, "
                             "or this is not a run folder")
    try:
        history = History.load(hist_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{hist_path} could not be read ({exc}); re-run the training or restore the file") from exc
    config = None
    cfg_path = path / CONFIG_FILE
    if cfg_path.is_file():
        try:
            config = TrainConfig.from_json(cfg_path)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{cfg_path} is not a valid nbtrain config ({exc}); fix or delete it") from exc
    name = (config.name if config is not None and config.name else "") or path.name
    return LoadedRun(name=name, path=path, config=config, history=history)


def is_complete_run(out: Path, config: TrainConfig, data: str | None) -> bool:
    """Whether ``out`` holds a completed run of exactly ``config`` (the notebooks' cache)."""
    # ``data``: the reference data's fingerprint, so a cache made on other data (an older
    # nbtrain's reference task) is trained afresh; None for the caller's own data.
    try:
        status = json.loads((out / STATUS_FILE).read_text())
        saved = TrainConfig.from_json(out / CONFIG_FILE)
    except (OSError, ValueError):
        return False
    return (
        status.get("status") == "completed"
        and status.get("epochs") == config.epochs
        and saved == config
        and status.get("data") == data
        and (out / CHECKPOINT_FILE).is_file()
    )


__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "HISTORY_FILE",
    "STATUS_FILE",
    "LoadedRun",
    "RunFolderError",
    "is_complete_run",
    "load_checkpoint",
    "load_run",
    "save_checkpoint",
]

"""Run folders: the files a run writes, checkpoints, and reading a folder back.

A run folder (``nbtrain.train(..., out=...)``) holds ``config.json``, ``history.json``,
``checkpoint.pt`` (written after every epoch) and ``status.json`` (written at the end: how
the run ended, its epochs, the device and precision it ran in, the reference data's
fingerprint and ``code_fingerprint()``). Checkpoints are written atomically with every
tensor on the CPU (a run saved on a GPU resumes anywhere) and loaded with
``torch.load(..., map_location="cpu", weights_only=True)``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write, write_json
from .config import TrainConfig
from .history import History

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
CHECKPOINT_FORMAT = "nbtrain.checkpoint/1"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A short hash of nbtrain's version and the source of every module in the package.

    Run caches (``train(..., reuse=True)``, sweep trials) record it and are reused only by
    the same code: a notebook is never checked against runs that older code made.
    """
    from .. import __version__

    return source_fingerprint(Path(__file__).resolve().parents[1], __version__)


def source_fingerprint(package: Path, version: str) -> str:
    """The first 16 hex digits of SHA-256 over ``version``, then, for each ``*.py`` file under
    ``package`` in sorted order, its relative path (with "/") and its bytes."""
    digest = hashlib.sha256(version.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    Every tensor in ``state`` is saved on the CPU. A crash midway leaves the previous checkpoint untouched.
    """
    import torch

    from .devices import to_cpu

    state = to_cpu(state)
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


def check_resumable(saved: dict, config: TrainConfig) -> None:
    """Raise ValueError unless a checkpoint's config (``saved``, a dict) matches ``config``.

    ``epochs``, ``name`` and ``device`` may differ: a run is resumed to train longer, under a
    new label, or on another machine (``precision`` may not: the scaler's state and the
    run's numbers belong to it).
    """
    saved_config = TrainConfig.from_dict(saved)
    ignore = {"epochs", "name", "device"}
    diffs = {
        k: (v, getattr(config, k))
        for k, v in saved_config.to_dict().items()
        if k not in ignore and getattr(config, k) != v
    }
    if diffs:
        listed = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"cannot resume: the config differs from the checkpoint's ({listed})")


def write_status(out: str | os.PathLike, status: str, message: str, epochs: int, data: str | None, *,
                 device: str | None = None, precision: str | None = None) -> Path:
    """Write ``status.json``: how the run ended, its epochs, the data and code fingerprints.

    ``data``: the reference data's fingerprint (None, and left out, for the caller's own data);
    ``device`` (``"cuda:0"``, ``"cpu"``) and ``precision``: what the run ran in (left out when None).
    """
    record = {"status": status, "message": message, "epochs": epochs}
    record.update({k: v for k, v in (("device", device), ("precision", precision)) if v is not None})
    if data is not None:
        record["data"] = data
    record["code"] = code_fingerprint()
    return write_json(Path(out) / STATUS_FILE, record)


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
    """Whether ``out`` holds a completed run of exactly ``config``, made by this code (the notebooks' cache).

    ``data``: the reference data's fingerprint, so a cache made on other data (an older
    nbtrain's reference task) is trained afresh; None for the caller's own data. A run
    whose ``status.json`` records another ``code_fingerprint()`` (or none) is not reused.
    """
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
        and status.get("code") == code_fingerprint()
        and (out / CHECKPOINT_FILE).is_file()
    )


__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "HISTORY_FILE",
    "LoadedRun",
    "RunFolderError",
    "STATUS_FILE",
    "check_resumable",
    "code_fingerprint",
    "is_complete_run",
    "load_checkpoint",
    "load_run",
    "save_checkpoint",
    "source_fingerprint",
    "write_status",
]

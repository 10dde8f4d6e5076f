"""nbtrain's own folders: a run folder and a sweep trial.

- ``"nbtrain"``: a run folder (``history.json``, optional ``config.json``: ``load_run``),
  or a ``history.json`` file (``History.load``). The History is returned as saved; its
  ``meta`` gains ``source`` (a recorder's own source is kept), ``evaluation_unit``
  ``"epoch"`` unless set, and ``config`` from ``config.json`` when the history has none.
- ``"nbtrain-sweep-trial"``: a run folder of a sweep trial, told by its ``done.json``
  (written last by the trial); the trial's status goes into the notes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..training.history import History
from ..training.runfolder import HISTORY_FILE, RunFolderError, load_run
from .errors import NotThisFormat

DONE_FILE = "done.json"  # nbtrain.sweeps.trial.DONE_FILE (logs may not import sweeps)
_RECORDED = ("recorder", "lightning-callback", "transformers-callback")


def locate_run(path: Path) -> tuple[Path, list[str]]:
    if path.is_file():
        if path.name != HISTORY_FILE and not path.suffix == ".json":
            raise NotThisFormat(f"not a {HISTORY_FILE}")
        return path, []
    if not (path / HISTORY_FILE).is_file():
        raise NotThisFormat(f"no {HISTORY_FILE}")
    return path, []


def locate_trial(path: Path) -> tuple[Path, list[str]]:
    if path.is_file() or not (path / DONE_FILE).is_file():
        raise NotThisFormat(f"no {DONE_FILE}")
    return locate_run(path)


def read_run(path: Path, notes: list[str], fmt: str = "nbtrain") -> History:
    """A run folder or ``history.json`` file as its History (see the module docstring)."""
    if path.is_file():
        try:
            history, config = History.load(path), None
        except ValueError as exc:
            raise NotThisFormat(str(exc)) from None
        source_path = path
    else:
        try:
            loaded = load_run(path)
        except RunFolderError as exc:
            raise NotThisFormat(str(exc)) from None
        history, config, source_path = loaded.history, loaded.config, path / HISTORY_FILE
    meta = history.meta
    kept = meta.get("source") if isinstance(meta.get("source"), dict) else {}
    meta["source"] = {**kept, "format": kept.get("format") if kept.get("format") in _RECORDED else fmt,
                      "path": str(source_path)}
    meta.setdefault("evaluation_unit", "epoch")
    meta.setdefault("columns", {})
    meta["notes"] = list(meta.get("notes") or []) + notes
    if config is not None and not isinstance(meta.get("config"), dict):
        meta["config"] = config.to_dict()
    return history


def read_trial(path: Path, notes: list[str]) -> History:
    """A sweep trial folder as its History; the notes say how the trial ended."""
    try:
        done = json.loads((path / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotThisFormat(f"{DONE_FILE} unreadable ({exc})") from None
    row = done.get("row") if isinstance(done, dict) else None
    status = row.get("status") if isinstance(row, dict) else None
    extra = [f"sweep trial: {status}" + (f" ({row['error']})" if row.get("error") else "")] if status else []
    return read_run(path, notes + extra, fmt="nbtrain-sweep-trial")


__all__ = ["DONE_FILE", "locate_run", "locate_trial", "read_run", "read_trial"]

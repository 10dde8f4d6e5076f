"""Hugging Face ``Trainer`` logs: ``trainer_state.json``.

The Trainer writes ``trainer_state.json`` into each ``checkpoint-N`` folder and, on
``trainer.save_state()``, into its output folder. Its ``log_history`` is a list of entries:

- a training entry every ``logging_steps``: ``loss`` (the mean training loss since the
  previous entry), ``grad_norm`` (of the entry's step, before clipping: transformers >=
  4.38), ``learning_rate``, ``step`` (optimizer steps done) and a fractional ``epoch``:
  one step row;
- an evaluation entry every ``eval_steps`` (or epoch): ``eval_loss`` at its ``step`` and
  ``epoch``: one evaluation row with ``val_loss``;
- a final summary entry (``train_runtime``, ``train_loss`` averaged over the run, ...): not
  a step, left out (the notes give its numbers).

``NaN`` and ``Infinity`` tokens (as Python's json writes them) are read as floats. The clip
threshold (``max_grad_norm``) is only in ``training_args.bin``, a pickle that is never
opened: give it with ``config=`` or ``nbtrain diagnose --clip``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..training.history import History
from .aliases import HUGGINGFACE, resolve
from .errors import LogFormatError, NotThisFormat
from .rows import make_history, sparse_rows
from .tables import read_text
from .values import BadValue, convert, is_absent

STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_SUMMARY_KEYS = ("train_runtime", "total_flos", "train_samples_per_second", "train_steps_per_second")


def locate(path: Path) -> tuple[Path, list[str]]:
    """The ``trainer_state.json`` of a file or folder: the folder's own, else its latest
    ``checkpoint-N`` folder's; NotThisFormat when there is none."""
    if path.is_file():
        return path, []
    if (path / STATE_FILE).is_file():
        return path / STATE_FILE, []
    checkpoints = sorted((int(m.group(1)), p) for p in path.iterdir()
                         if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name)) and (p / STATE_FILE).is_file())
    if not checkpoints:
        raise NotThisFormat(f"no {STATE_FILE}, here or in a checkpoint-N folder")
    latest = checkpoints[-1][1]
    note = (f"no {STATE_FILE} in the output folder: read {latest.name}/{STATE_FILE}, the latest of "
            f"{len(checkpoints)} checkpoint(s)")
    return latest / STATE_FILE, [note]


def read(path: Path, columns: dict, notes: list[str]) -> History:
    """``trainer_state.json`` (a file, or an output/checkpoint folder) as a History."""
    state = _load(path)
    entries = state["log_history"]
    train = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and not any(k in e for k in _SUMMARY_KEYS)]
    summaries = [e for e in entries if isinstance(e, dict) and any(k in e for k in _SUMMARY_KEYS)]
    names = list(dict.fromkeys(k for _, e in train for k in e))
    mapping, column_notes = resolve(names, HUGGINGFACE, columns)
    records = [_record(e, mapping, path, i) for i, e in train]
    steps, evals, no_step = sparse_rows(records)
    if not steps and not evals:
        raise NotThisFormat("log_history holds no training or evaluation entry"
                            + (" yet" if not entries else f" (keys: {sorted(set(names))})"))
    notes = notes + _notes(state, summaries, no_step) + column_notes
    return make_history(steps, evals, fmt="huggingface", path=path, columns=mapping, notes=notes)


def _load(path: Path) -> dict:
    try:
        state = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise NotThisFormat(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise NotThisFormat("no 'log_history' list")
    return state


def _record(entry: dict, mapping: dict, path: Path, index: int) -> dict:
    record: dict[str, Any] = {}
    for key, target in mapping.items():
        value = entry.get(key)
        if value is None or is_absent(value):
            continue
        try:
            record[target] = convert(target, value)
        except BadValue as exc:
            raise LogFormatError(f"{path}, log_history[{index}][{key!r}] ({target}): {exc}") from None
    return record


def _notes(state: dict, summaries: list[dict], no_step: int) -> list[str]:
    notes = []
    every = state.get("logging_steps")
    if isinstance(every, int) and every > 1:
        notes.append(f"a training entry every {every} steps (logging_steps): its loss is the mean since the "
                     "previous entry, grad_norm and learning_rate are the entry's own step's")
    for summary in summaries:
        shown = {k: summary[k] for k in ("step", "train_loss", "train_runtime") if k in summary}
        notes.append(f"the final summary entry is not a step: left out ({json.dumps(shown)})")
    if no_step:
        notes.append(f"{no_step} training entr{'y' if no_step == 1 else 'ies'} without a step left out")
    notes.append("grad_norm is logged before clipping; the clip threshold (max_grad_norm) is in "
                 "training_args.bin, a pickle nbtrain does not open: give it as config= or --clip")
    return notes


__all__ = ["STATE_FILE", "locate", "read"]

"""``read_log``: any training log nbtrain knows, as a History.

Auto-detection (``format="auto"``), by what the path is:

- a folder: a sweep trial (``done.json`` + ``history.json``), an nbtrain run folder
  (``history.json``), a Hugging Face output or checkpoint folder (``trainer_state.json``,
  here or in the latest ``checkpoint-N``), a Lightning log folder (``metrics.csv``, here or
  in the latest ``version_N``, one or two levels down), TensorBoard event files (here or in
  one folder below): the first that is there is read;
- a file: ``*tfevents*`` is TensorBoard, ``trainer_state.json`` Hugging Face,
  ``history.json`` nbtrain; other ``.json`` files are tried as Hugging Face, nbtrain, then
  JSON lines; ``.jsonl``/``.ndjson`` JSON lines; any other text file is tried as Lightning
  (``step`` and ``epoch`` columns with Lightning-style names, or the name ``metrics.csv``),
  Keras (``epoch`` first, no ``step``), then a plain CSV (well-known names or ``columns=``).

``format=`` forces one reader (its looser checks apply). Every file is read as data: JSON,
CSV, YAML through ``yaml.safe_load``, TensorBoard's protocol buffers; no pickle (never
``training_args.bin``), no code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from ..training.history import History
from . import huggingface, keras, lightning, plain, runfolders, tensorboard
from .aliases import check_columns
from .errors import LogFormatError, NotThisFormat
from .runs import check_appended
from .tables import Table, read_csv, read_jsonl

FORMATS = ("huggingface", "lightning", "keras", "tensorboard", "csv", "jsonl", "nbtrain", "nbtrain-sweep-trial")
_FOLDER_ORDER = ("nbtrain-sweep-trial", "nbtrain", "huggingface", "lightning", "tensorboard")
_FILE_ONLY = ("keras", "csv", "jsonl")
_LOCATE: dict[str, Callable[[Path], tuple[Path, list[str]]]] = {
    "nbtrain-sweep-trial": runfolders.locate_trial,
    "nbtrain": runfolders.locate_run,
    "huggingface": huggingface.locate,
    "lightning": lightning.locate,
    "tensorboard": tensorboard.locate,
}


def read_log(path: str | os.PathLike, format: str = "auto", columns: Mapping[str, str | None] | None = None, *,
             appended: Any = "last") -> History:
    """Read a training log into a History (``nbtrain.logs`` describes each format).

    ``path``: a log file or a folder that holds one. ``format``: ``"auto"`` or one of
    ``FORMATS``. ``columns``: ``{their name: nbtrain name or None}``, read before each
    format's alias table (``aliases``). ``appended``: which run of an epoch table that holds
    several appended runs: ``"last"``, ``"continue"`` or an index (``runs``).

    Step rows, evaluation rows and ``meta`` (``source``, ``columns``, ``notes``,
    ``evaluation_unit``, and ``config`` only for what the log states) follow the data
    contract in ``nbtrain.logs``. Raises ``FileNotFoundError`` for a missing path and
    ``LogFormatError`` (a ValueError), one line naming the file, the formats tried and what
    each missed, for anything else.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file or folder path, got {type(path).__name__}: {path!r}")
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    columns = check_columns(columns)
    appended = check_appended(appended)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"log path {path} does not exist")
    if columns and format in ("nbtrain", "nbtrain-sweep-trial"):
        raise ValueError(f"columns= does not apply to format {format!r}: an nbtrain history has nbtrain's names")
    forced = format != "auto"
    if not forced and path.is_file() and _binary(path):
        raise LogFormatError(f"{path}: a binary file, not a training log (the formats read: {', '.join(FORMATS)}; "
                             "TensorBoard event files are named events.out.tfevents.*)")
    order = [format] if forced else (_FOLDER_ORDER if path.is_dir() else _file_order(path))
    tried: list[str] = []
    tables: dict = {}
    for fmt in order:
        try:
            return _read(fmt, path, columns, forced, appended, tables)
        except NotThisFormat as exc:
            tried.append(f"{fmt} ({_one_line(str(exc))})")
    hint = "; keras, csv and jsonl read a file: give its path" if path.is_dir() and not forced else ""
    raise LogFormatError(f"{path}: no training log nbtrain can read; tried {'; '.join(tried)}{hint}")


def _binary(path: Path) -> bool:
    if tensorboard.EVENTS in path.name:
        return False
    with path.open("rb") as fh:
        head = fh.read(4096)
    return b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _file_order(path: Path) -> tuple[str, ...]:
    name, suffix = path.name, path.suffix.lower()
    if tensorboard.EVENTS in name:
        return ("tensorboard",)
    if name == huggingface.STATE_FILE:
        return ("huggingface",)
    if name == runfolders.HISTORY_FILE:
        return ("nbtrain",)
    if suffix == ".json":
        return ("huggingface", "nbtrain", "jsonl")
    if suffix in (".jsonl", ".ndjson"):
        return ("jsonl",)
    with path.open("rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    return ("jsonl",) if head.startswith(b"{") else ("lightning", "keras", "csv")


def _read(fmt: str, path: Path, columns: dict, forced: bool, appended: Any, tables: dict) -> History:
    """One format's reader on ``path`` (NotThisFormat when the log is not in it)."""
    notes: list[str] = []
    if fmt in _FILE_ONLY:
        if path.is_dir():
            raise NotThisFormat("reads a file: give the file's path, not a folder")
        target = path
    else:
        target, notes = _LOCATE[fmt](path)
    if fmt == "nbtrain":
        return runfolders.read_run(target, notes)
    if fmt == "nbtrain-sweep-trial":
        return runfolders.read_trial(target, notes)
    if fmt == "huggingface":
        return huggingface.read(target, columns, notes)
    if fmt == "tensorboard":
        return tensorboard.read(target, columns, notes)
    if fmt == "jsonl":
        return plain.read(_table(target, tables, read_jsonl), columns, notes, "jsonl", appended)
    table = _table(target, tables, read_csv)
    if fmt == "lightning":
        return lightning.read(table, columns, notes, forced)
    if fmt == "keras":
        return keras.read(table, columns, notes, forced, appended)
    return plain.read(table, columns, notes, "csv", appended)


def _table(path: Path, cache: dict, reader: Callable[[Path], Table]) -> Table:
    key = (path, reader)
    if key not in cache:
        try:
            cache[key] = reader(path)
        except NotThisFormat as exc:
            cache[key] = exc
    if isinstance(cache[key], NotThisFormat):
        raise cache[key]
    return cache[key]


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["FORMATS", "read_log"]

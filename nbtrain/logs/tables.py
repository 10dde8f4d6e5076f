"""Reading a text table (CSV) or JSON lines file into records of present values.

Text: UTF-8 with or without a byte-order mark (UTF-16 when its mark says so). CSV goes
through the ``csv`` module, so quoted cells, ``\\n``, ``\\r\\n`` and ``\\r\\r\\n`` line endings
(a CSV written in text mode on Windows) all read the same; the delimiter is the one of
``,`` ``;`` and tab that the header line holds most. Empty lines are skipped; a line that
repeats the header marks the start of an appended run (``runs.split_runs``); lines with
another number of cells than the header are left out and named in the notes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import NotThisFormat
from .values import BadValue, convert, is_absent

_PEEK = 4096


@dataclass
class Table:
    """A log as records: one dict per line, of the cells present (their log names)."""

    path: Path
    names: list[str]  # column names (CSV header; for JSON lines, every key in order of appearance)
    records: list[dict]  # present cells only
    lines: list[int]  # the 1-based line of each record
    restarts: set[int] = field(default_factory=set)  # record indices that follow a repeated header
    notes: list[str] = field(default_factory=list)


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM) or BOM-marked UTF-16; NotThisFormat otherwise."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if b"\x00" in data[:_PEEK]:
            raise NotThisFormat("a binary file, not text")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise NotThisFormat(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_csv(path: Path, text: str | None = None) -> Table:
    """A CSV file as a Table (see the module docstring)."""
    text = read_text(path) if text is None else text
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise NotThisFormat("an empty file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    header: list[str] | None = None
    table = Table(path=path, names=[], records=[], lines=[])
    bad: list[int] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            header = cells
            table.names = [c for c in header]
            continue
        if cells == header:
            table.restarts.add(len(table.records))
            continue
        while len(cells) > len(header) and cells[-1] == "":
            cells.pop()
        if len(cells) != len(header):
            bad.append(reader.line_num)
            continue
        # every absent token is at most 4 characters long: the longer cells skip the test
        table.records.append({n: c for n, c in zip(header, cells) if c and (len(c) > 4 or not is_absent(c))})
        table.lines.append(reader.line_num)
    if bad:
        table.notes.append(f"{len(bad)} line(s) with another number of cells than the header's {len(header)} "
                           f"left out (lines {_ranges(bad)}): their columns are unknown")
    return table


def read_jsonl(path: Path) -> Table:
    """A JSON lines file (one object per line; ``NaN``/``Infinity`` tokens allowed) as a Table."""
    table = Table(path=path, names=[], records=[], lines=[])
    seen: dict[str, None] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NotThisFormat(f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise NotThisFormat(f"line {number} is a JSON {type(obj).__name__}, not an object")
        seen.update(dict.fromkeys(obj))
        table.records.append({k: v for k, v in obj.items() if not is_absent(v) and not isinstance(v, (dict, list))})
        table.lines.append(number)
    if not table.records:
        raise NotThisFormat("no JSON objects")
    table.names = list(seen)
    return table


def mapped_records(table: Table, mapping: Mapping[str, str], error) -> list[dict]:
    """Each record with its mapped cells only, under nbtrain names, converted
    (``values.convert``); a bad cell raises ``error`` naming the file, line and column."""
    out = []
    items = list(mapping.items())
    for record, line in zip(table.records, table.lines):
        row: dict[str, Any] = {}
        for name, target in items:
            if name in record:
                try:
                    row[target] = convert(target, record[name])
                except BadValue as exc:
                    raise error(f"{table.path}, line {line}, column {name!r} ({target}): {exc}") from None
        out.append(row)
    return out


def _ranges(numbers: list[int]) -> str:
    parts, start, prev = [], numbers[0], numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


__all__ = ["Table", "mapped_records", "read_csv", "read_jsonl", "read_text"]

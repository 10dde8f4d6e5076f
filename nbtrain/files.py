"""Writing files that must survive a crash, and JSON that keeps NaN and infinity.

Every file nbtrain writes (history, config, status, checkpoints, sweep records) goes
through ``atomic_write``. Every JSON nbtrain writes encodes non-finite floats one way,
``{"float": "nan"}`` / ``{"float": "inf"}`` / ``{"float": "-inf"}``, so that strict JSON
readers accept the file and ``from_json_safe`` gives the floats back.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash midway leaves the previous file untouched and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda fh: fh.write(text))


def to_python(value: Any, encode_non_finite: bool = False) -> Any:
    """Python numbers, strings, lists and dicts only (no numpy or torch types).

    numpy and torch scalars become Python numbers, arrays and tuples lists. With
    ``encode_non_finite`` a NaN or infinite float becomes ``{"float": repr(value)}``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"float": repr(value)} if encode_non_finite and not math.isfinite(value) else value
    if isinstance(value, dict):
        return {str(k): to_python(v, encode_non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v, encode_non_finite) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return to_python(value.tolist(), encode_non_finite)
    if hasattr(value, "item"):
        return to_python(value.item(), encode_non_finite)
    raise TypeError(f"values must be numbers, strings, lists or dicts, got {type(value).__name__}: {value!r}")


def to_json_safe(value: Any) -> Any:
    """``to_python`` with non-finite floats encoded: ready for strict JSON."""
    return to_python(value, encode_non_finite=True)


def from_json_safe(value: Any) -> Any:
    """The inverse of ``to_json_safe``: ``{"float": "nan"}`` back to ``float("nan")``."""
    if isinstance(value, dict):
        if set(value) == {"float"}:
            return float(value["float"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, value: Any, indent: int | None = 2) -> Path:
    """``to_json_safe(value)`` as JSON, written atomically."""
    separators = None if indent is not None else (",", ":")
    text = json.dumps(to_json_safe(value), indent=indent, separators=separators, allow_nan=False)
    return atomic_write_text(path, text + ("\n" if indent is not None else ""))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by ``write_json`` (non-finite floats restored)."""
    return from_json_safe(json.loads(Path(path).read_text(encoding="utf-8")))


__all__ = [
    "atomic_write",
    "atomic_write_text",
    "from_json_safe",
    "read_json",
    "to_json_safe",
    "to_python",
    "write_json",
]

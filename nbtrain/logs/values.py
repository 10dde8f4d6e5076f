"""Cell values: text or JSON values of a log turned into the History's Python values.

- absent: an empty cell, or ``NA``, ``N/A``, ``None``, ``null``, ``<NA>`` (Keras's
  CSVLogger writes ``NA`` for a key an epoch did not log), or a JSON ``null``: the key is
  left out of the row (never NaN, never None);
- ``step``: an int (``"3"``, ``3``, ``3.0``); a fractional step is an error;
- ``epoch``: as logged, an int (``"3"``) or a float (``"1.25"``, Hugging Face's fractional epochs);
- ``clipped``, ``skipped``: a bool (``True``/``False``/``true``/``false``/``1``/``0``);
- ``n_steps``: an int; everything else a float. ``nan``, ``NaN``, ``inf``, ``-inf``,
  ``Infinity`` and ``-Infinity`` are the non-finite floats they name.
"""

from __future__ import annotations

import math
from typing import Any

ABSENT_TOKENS = frozenset({"", "na", "n/a", "none", "null", "<na>"})  # lower case, 4 characters at most
_TRUE = frozenset({"true", "1", "1.0", "yes"})
_FALSE = frozenset({"false", "0", "0.0", "no"})
BOOL_NAMES = frozenset({"clipped", "skipped"})
INT_NAMES = frozenset({"step", "n_steps"})


class BadValue(ValueError):
    """A cell that should hold a number and does not (the reader adds file, line and column)."""


def is_absent(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and value.strip().lower() in ABSENT_TOKENS


def convert(name: str, value: Any) -> Any:
    """The History value of ``value`` logged under the nbtrain name ``name`` (see the module
    docstring). Call only on present values (``is_absent`` false)."""
    if name in BOOL_NAMES:
        return _flag(value)
    if name in INT_NAMES:
        return _whole(value)
    if name == "epoch":
        return _epoch(value)
    return _number(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise BadValue(f"{value!r} is not a number")


def _whole(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    number = _number(value)
    if not math.isfinite(number) or not number.is_integer():
        raise BadValue(f"{value!r} is not a whole number")
    return int(number)


def _epoch(value: Any) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    number = _number(value)
    if not math.isfinite(number):
        raise BadValue(f"{value!r} is not an epoch number")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"{value!r} is not a flag (True/False, 1/0)")


__all__ = ["ABSENT_TOKENS", "BadValue", "convert", "is_absent"]

"""Numbers and lists as report text."""

from __future__ import annotations

import math
from typing import Any


def _num(x: Any) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.5g}"


def _lr(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.3g}"


def _join(values, fmt) -> str:
    return ", ".join(fmt(v) for v in values)


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _epoch_span(epochs: list[int]) -> str:
    if not epochs:
        return "none"
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if list(epochs) == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return "epochs " + _and([str(e) for e in epochs])

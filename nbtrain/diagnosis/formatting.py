"""Numbers and lists as report text (shared by the checks, expectations and settings)."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable


def num(x: Any) -> str:
    """A number with 5 significant digits; ``"n/a"`` for None, ``"nan"``/``"inf"`` as such."""
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.5g}"


def lr_text(x: Any) -> str:
    """A learning rate with 3 significant digits; ``"n/a"`` for None."""
    return "n/a" if x is None else f"{float(x):.3g}"


def join(values: Iterable[Any], fmt: Callable[[Any], str]) -> str:
    """``fmt`` of each value, comma-separated."""
    return ", ".join(fmt(v) for v in values)


def and_list(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def epoch_span(epochs: list[int]) -> str:
    """``"epoch 3"``, ``"epochs 2-5"`` (consecutive) or ``"epochs 1, 4 and 6"``; ``"none"`` when empty."""
    if not epochs:
        return "none"
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if list(epochs) == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return "epochs " + and_list([str(e) for e in epochs])


def percent(x: float) -> str:
    """A share as a whole percentage: ``0.473`` -> ``"47%"``."""
    return f"{x:.0%}"


__all__ = ["and_list", "epoch_span", "join", "lr_text", "num", "percent"]

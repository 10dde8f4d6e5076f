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


def sci(x: Any, digits: int = 3) -> str:
    """A number in short scientific notation, as people write learning rates: ``2e-05`` ->
    ``"2e-5"``, ``0.00025`` -> ``"2.5e-4"`` (at most ``digits`` significant digits, no trailing
    zeros, no ``+`` or leading zero in the exponent); ``"0"`` for zero, ``"n/a"`` for None."""
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return num(x) if x != 0 else "0"
    mantissa, exponent = f"{x:.{max(digits - 1, 0)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def sig(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant figures, never in exponent form between 1e-4 and
    1e6 (``0.4316``, ``53.27``, ``1234``); ``"n/a"`` for None."""
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x):
        return num(x)
    if x != 0 and not 1e-4 <= abs(x) < 1e6:
        return sci(x, digits)
    return f"{x:#.{digits}g}".rstrip(".") if "e" not in f"{x:#.{digits}g}" else f"{x:.{digits}g}"


def times(x: Any) -> str:
    """A ratio with 3 significant figures and a times sign: ``3.4837`` -> ``"3.48×"``."""
    return "n/a" if x is None else f"{float(x):.3g}×"


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
    """A share as a whole percentage: ``0.473`` -> ``"47%"``; a share that is not 0 or 1 but
    would round to ``0%`` or ``100%`` keeps one decimal, never rounded onto them (``"0.4%"``,
    ``"99.6%"``, ``"<0.1%"``, ``">99.9%"``)."""
    if 0 < x < 0.005:
        return "<0.1%" if x < 0.0005 else f"{x:.1%}"
    if 0.995 <= x < 1:
        return ">99.9%" if x >= 0.9995 else f"{x:.1%}"
    return f"{x:.0%}"


__all__ = ["and_list", "epoch_span", "join", "lr_text", "num", "percent", "sci", "sig", "times"]

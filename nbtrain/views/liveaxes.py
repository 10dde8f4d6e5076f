"""The live panels' axis limits: chosen from the data alone, and so that they change rarely.

A panel of the live plots (``nbtrain.views.livepanel``) draws its frame (axes, ticks, tick
labels) again only when its limits change, so the limits are rounded out to values a
growing run crosses only now and then (``round_out``); the LR axis is sized around the LRs
used (``lr_view``) and labelled at them where the labels do not overlap (``spread``).
This module imports only the standard library.
"""
from __future__ import annotations

import math

__all__ = ["lr_view", "round_out", "spread"]


def lr_view(low: float, high: float) -> tuple[float, float]:
    """The LR axis's limits for LRs from ``low`` to ``high``: at least a factor of 4 tall
    (a constant LR sits in the middle), with a margin of 8% of the height."""
    if not (0 < low <= high and math.isfinite(high)):
        return 1e-6, 1e-3
    lo, hi = math.log10(low), math.log10(high)
    span = max(hi - lo, math.log10(4.0))
    mid = (lo + hi) / 2
    pad = 0.08 * span
    return 10 ** (mid - span / 2 - pad), 10 ** (mid + span / 2 + pad)


def round_out(low: float, high: float, log: bool) -> tuple[float, float]:
    """Limits rounded outwards to values that change rarely as a run grows: a log axis to
    1, 2 or 5 times a power of ten; a linear one to ``_NICE`` values (a positive bottom at
    most half the top goes to 0), unless the data would then fill less than a quarter of the
    height: then to a step of 1, 2 or 5 times a power of ten that cuts the span into at most 8 parts."""
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return low, high
    if log:
        return _nice(low, False, (1, 2, 5)), _nice(high, True, (1, 2, 5))
    bottom = 0.0 if 0 <= low <= high / 2 else _nice(low, False)
    top = _nice(high, True)
    if high - low >= (top - bottom) / 4:
        return bottom, top
    power = 10 ** math.floor(math.log10((high - low) / 8))
    step = next(power * k for k in (1, 2, 5, 10) if (high - low) / (power * k) <= 8)
    return math.floor(low / step) * step, math.ceil(high / step) * step


_NICE = (1, 1.5, 2, 3, 4, 6, 8)  # a linear axis's limits: these times a power of ten


def _nice(value: float, up: bool, levels: tuple = _NICE) -> float:
    """The nearest ``levels`` value times a power of ten at or above ``value`` (``up``), or at or
    below it; negative values mirrored, 0 stays 0."""
    if value == 0:
        return 0.0
    if value < 0:
        return -_nice(-value, not up, levels)
    power = math.floor(math.log10(value))
    candidates = [k * 10.0 ** p for p in (power - 1, power, power + 1) for k in levels]
    if up:
        return min(c for c in candidates if c >= value * (1 - 1e-12))
    return max(c for c in candidates if c <= value * (1 + 1e-12))


def spread(marks: tuple, ylim: tuple, height: float, gap_px: float) -> tuple:
    """The ``marks`` inside the (log) view ``ylim`` whose labels do not overlap: each kept
    one at least ``gap_px`` from the others, earlier marks first."""
    lo, hi = (math.log10(v) for v in ylim)
    per_px = (hi - lo) / max(height, 1.0)
    kept: list = []
    for v in marks:
        y = math.log10(v)
        if lo <= y <= hi and all(abs(y - math.log10(k)) >= gap_px * per_px for k in kept):
            kept.append(v)
    return tuple(sorted(kept))

"""The shape of a logged learning-rate curve: constant, warmup, decays, cuts, cycles.

``classify(x, y)`` reads LRs ``y`` at positions ``x`` (steps, or evaluation points) and
returns a :class:`Shape`. Definitions:

move
    A change between two consecutive logged LRs larger than ``REL_TOL`` of the peak LR
    (smaller ones are float round-off); up or down. Runs of moves in one direction, with
    flat stretches ignored, give the curve's phases.
constant
    No move at all.
warmup
    A first phase of rises from the start that ends at the peak and lasts at most
    ``WARMUP_MAX_SHARE`` of the logged span; a longer first rise followed by a decay is
    one-cycle (``torch.optim.lr_scheduler.OneCycleLR`` rises over 30% by default).
cuts
    A decay (after the warmup, if any) in which at most half of the intervals move is a
    series of cuts (StepLR, MultiStepLR, ReduceLROnPlateau); each cut's factor is new / old.
    Otherwise the decay is smooth: linear, cosine (``a + b (1 + cos(pi t / T)) / 2`` with the
    period's half ``T`` at least the decay's span: the run may stop before the decay ends)
    or exponential (log-linear), whichever fits within ``FIT_TOL`` of the LR range at every
    point with the smallest largest error (linear first when within ``LINEAR_TOL``); else
    "decay" (another shape).
cyclic
    Rises after a fall: ``"cosine_warm_restarts"`` when every rise is one jump back to at
    least 90% of the peak, else ``"cyclic"`` (CyclicLR's triangles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REL_TOL = 1e-6
WARMUP_MAX_SHARE = 0.2
FIT_TOL = 0.02
LINEAR_TOL = 0.005
COSINE_SPANS = (1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)


@dataclass
class Shape:
    """What ``classify`` found (see the module's definitions)."""

    kind: str  # constant, rising, warmup_constant, cuts, linear, cosine, exponential, decay, one_cycle,
    #            cyclic, cosine_warm_restarts, unknown
    warmup_end: float | None = None  # x where the warmup reached the peak
    peak: float | None = None
    first: float | None = None
    last: float | None = None
    cut_at: list[float] = field(default_factory=list)  # x of the first LR after each cut (each down move)
    factors: list[float] = field(default_factory=list)  # new / old per cut (per down move)
    fit_error: float | None = None  # largest error of the fitted decay, as a share of the range
    rise_share: float | None = None  # share of the span the first rise took


def _runs(signs: np.ndarray) -> list[tuple[int, int, int]]:
    """``(sign, first move, last move)`` per run of moves in one direction (flats skipped)."""
    runs: list[list[int]] = []
    for i, s in enumerate(signs):
        if s == 0:
            continue
        if runs and runs[-1][0] == s:
            runs[-1][2] = i
        else:
            runs.append([int(s), i, i])
    return [tuple(r) for r in runs]


def classify(x: np.ndarray, y: np.ndarray) -> Shape:
    """The shape of the LR curve ``y`` at ``x`` (finite values only, in order)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y) < 2 or y.max() <= 0:
        return Shape("unknown")
    peak = float(y.max())
    base = Shape("constant", peak=peak, first=float(y[0]), last=float(y[-1]))
    d = np.diff(y) / peak
    signs = np.where(np.abs(d) > REL_TOL, np.sign(d), 0).astype(int)
    runs = _runs(signs)
    if not runs:
        return base
    span = float(x[-1] - x[0]) or 1.0
    if runs[0][0] > 0:
        end = runs[0][2] + 1  # index of the first point at the top of the rise
        base.warmup_end, base.rise_share = float(x[end]), float(x[end] - x[0]) / span
        if len(runs) == 1:
            base.kind = "warmup_constant" if end < len(y) - 1 else "rising"
            return base
        if len(runs) == 2:
            if base.rise_share > WARMUP_MAX_SHARE:
                base.kind = "one_cycle"
                return base
            return _decay(base, x, y, signs, end, runs[1][1])
    if runs[0][0] < 0 and len(runs) == 1:
        return _decay(base, x, y, signs, 0, runs[0][1])
    rises = [r for r in runs if r[0] > 0 and r[1] > 0]
    jumps = all(r[1] == r[2] and y[r[2] + 1] >= 0.9 * peak for r in rises)
    base.kind = "cosine_warm_restarts" if jumps else "cyclic"
    return base


def _decay(shape: Shape, x: np.ndarray, y: np.ndarray, signs: np.ndarray, phase: int, start: int) -> Shape:
    """The decay phase from index ``phase`` (the start, or the top of the warmup) to the end;
    ``start`` is the last point before its first move."""
    moves = signs[phase:]
    downs = np.flatnonzero(moves < 0) + phase
    shape.cut_at = [float(x[i + 1]) for i in downs]
    shape.factors = [float(y[i + 1] / y[i]) if y[i] > 0 else float("nan") for i in downs]
    if 2 * len(downs) <= len(moves):
        shape.kind = "cuts"
        return shape
    end = len(y)
    while end - 1 > start + 2 and abs(y[end - 1] - y[end - 2]) <= REL_TOL * shape.peak:
        end -= 1  # a flat tail at the floor is not part of the curve's shape
    xs, ys = x[start:end], y[start:end]
    fits = {"linear": _linear_error(xs, ys), "cosine": _cosine_error(xs, ys), "exponential": _exponential_error(xs, ys)}
    kind, error = min(fits.items(), key=lambda kv: kv[1])
    if fits["linear"] <= LINEAR_TOL:
        kind, error = "linear", fits["linear"]
    shape.kind, shape.fit_error = (kind if error <= FIT_TOL else "decay"), float(error)
    return shape


def _scale(ys: np.ndarray) -> float:
    r = float(ys.max() - ys.min())
    return r if r > 0 else 1.0


def _linear_error(xs: np.ndarray, ys: np.ndarray) -> float:
    if len(ys) < 3:
        return 0.0
    coef = np.polyfit(xs, ys, 1)
    return float(np.max(np.abs(np.polyval(coef, xs) - ys))) / _scale(ys)


def _cosine_error(xs: np.ndarray, ys: np.ndarray) -> float:
    u = xs - xs[0]
    span = float(u[-1]) or 1.0
    best = math.inf
    for k in COSINE_SPANS:
        c = (1 + np.cos(np.pi * u / (span * k))) / 2
        a = np.vstack([np.ones_like(c), c]).T
        (lo, amp), *_ = np.linalg.lstsq(a, ys, rcond=None)
        if amp <= 0:
            continue
        best = min(best, float(np.max(np.abs(lo + amp * c - ys))))
    return best / _scale(ys)


def _exponential_error(xs: np.ndarray, ys: np.ndarray) -> float:
    if np.any(ys <= 0):
        return math.inf
    coef = np.polyfit(xs, np.log(ys), 1)
    return float(np.max(np.abs(np.exp(np.polyval(coef, xs)) - ys))) / _scale(ys)


__all__ = ["FIT_TOL", "LINEAR_TOL", "REL_TOL", "Shape", "WARMUP_MAX_SHARE", "classify"]

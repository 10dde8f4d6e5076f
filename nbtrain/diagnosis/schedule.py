"""The learning-rate schedule a run used, read from its logged LR.

``infer_schedule(data)`` reads the LR per step when the step rows log it, else per
evaluation point, classifies the curve (``lr_shapes``) and returns a :class:`Schedule`:
its ``kind`` and a sentence (``description``) for the report. Kinds: ``constant``,
``warmup_constant``, ``rising``, ``linear``/``cosine``/``exponential``/``decay`` (a smooth
decay, ``warmup`` set when it follows one), ``step`` (cuts by a factor), ``plateau``,
``one_cycle``, ``cyclic``, ``cosine_warm_restarts``, ``unknown`` (no LR logged, or fewer
than two values).

Plateau cuts
    Cuts (and an exponential decay by one factor per point, which a plateau scheduler
    cutting at every evaluation of a long stall also draws) are ReduceLROnPlateau's when
    they are by one constant factor (a last, smaller cut may stop at a floor) and some
    plateau setting replays them exactly on the logged
    validation losses, at the evaluation points: torch's rule (a cut on the (patience+1)-th
    evaluation without beating best × (1 − threshold)) or Keras's (on the patience-th,
    beating best − min_delta), patience 0-``MAX_PATIENCE``, cooldown 0-3, threshold 1e-4,
    0, 1e-3 or 1e-2; the logged LR is taken as the one in force after each point (the
    contract's ``lr``) or, failing that, the one in force during it (Keras's CSV). The
    simplest setting that replays the cuts wins: default threshold, no cooldown, the
    contract's LR convention, then the semantics the source suggests (Keras for Keras logs,
    else torch; a stated patience decides), then the smallest patience. Cuts that no setting
    replays, or three or more cuts every k points from the start, are step cuts (StepLR,
    MultiStepLR); two such cuts count as plateau cuts only when the default threshold with no
    cooldown replays them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .formatting import and_list, lr_text
from .lr_shapes import Shape, classify
from .plateau import keras_plateau_cuts, simulate_plateau
from .run_data import RunData

MAX_PATIENCE = 20
FACTOR_RTOL = 0.02
THRESHOLDS = (1e-4, 0.0, 1e-3, 1e-2)
COOLDOWNS = (0, 1, 2, 3)
PLATEAU_CHECKS = "LR_NOT_ADAPTING, SCHEDULER_MISMATCH, RUN_TOO_SHORT_FOR_PATIENCE"
KIND_NAMES = {
    "constant": "constant", "warmup_constant": "warmup then constant", "rising": "rising", "linear": "linear decay",
    "cosine": "cosine decay", "exponential": "exponential decay", "decay": "smooth decay", "step": "step cuts",
    "plateau": "plateau cuts", "one_cycle": "one-cycle", "cyclic": "cyclic", "cosine_warm_restarts":
    "cosine annealing with warm restarts",
}


@dataclass
class Schedule:
    """The schedule read from the log (see the module's docstring)."""

    kind: str
    level: str = ""  # "step" or "evaluation": which logged LR it was read from
    description: str = ""
    warmup: float | None = None  # x where the warmup ended (a step, or a point)
    peak: float | None = None
    final: float | None = None
    factor: float | None = None  # step and plateau cuts: new / old
    cuts: list = field(default_factory=list)  # where each cut shows (steps, or points)
    plateau: dict | None = None  # patience, threshold, cooldown, min_lr, semantics, lr_logged

    @property
    def is_plateau(self) -> bool:
        return self.kind == "plateau"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _series(data: RunData) -> tuple[str, np.ndarray, np.ndarray] | None:
    got = data.step_values("lr")
    if got is not None and np.isfinite(got[1]).sum() >= 2:
        rows, values = got
        x = data.step_numbers()[rows]
        after = data.col("lr")
        if after is not None and data.logged("lr")[-1] and math.isfinite(after[-1]) and len(x):
            # the LR after the last point's scheduler step (shows a cut made at the last point)
            return "step", np.append(x, x.max() + 1), np.append(values, after[-1])
        return "step", x, values
    lr = data.col("lr")
    if lr is None:
        return None
    return "evaluation", np.asarray(data.positions, dtype=float), lr


def infer_schedule(data: RunData, stated: dict | None = None) -> Schedule:
    """The schedule of ``data``'s logged LR. ``stated``: plateau settings known from a
    partial config (``patience``, ``factor``, ``threshold``, ``cooldown``) that narrow the search."""
    series = _series(data)
    if series is None:
        return Schedule("unknown", description="no LR logged: the schedule is unknown")
    level, x, y = series
    shape = classify(x, y)
    if shape.kind == "unknown":
        return Schedule("unknown", level, "fewer than two logged LRs: the schedule is unknown")
    if shape.kind == "cuts":
        return _cuts(data, level, shape, stated or {})
    if shape.kind == "exponential" and _constant_factor(shape.factors) is not None:
        cuts = _cuts(data, level, shape, stated or {})  # a plateau that cut at every evaluation of a stall
        if cuts.is_plateau:
            return cuts
    return _smooth(data, level, shape)


def _where(data: RunData, level: str, x: float) -> str:
    if level == "step":
        return f"step {int(x):,}"
    return data.units().at(data.ids[int(x)]) if 0 <= int(x) < len(data.ids) else f"point {int(x)}"


def _where_all(data: RunData, level: str, xs: list[float]) -> str:
    """``"steps 101, 201 and 301"`` or ``"epochs 5 and 9"`` (the run's units)."""
    if level != "step" and all(0 <= int(x) < len(data.ids) for x in xs):
        return data.units().span([data.ids[int(x)] for x in xs])
    if len(xs) == 1:
        return _where(data, level, xs[0])
    return "steps " + and_list([f"{int(x):,}" for x in xs])


def _smooth(data: RunData, level: str, shape: Shape) -> Schedule:
    warm = f"warmup to {lr_text(shape.peak)} until {_where(data, level, shape.warmup_end)}, then " \
        if shape.warmup_end is not None and shape.kind not in ("rising", "one_cycle") else ""
    first, last, peak = lr_text(shape.first), lr_text(shape.last), lr_text(shape.peak)
    if shape.kind == "one_cycle":
        text = (f"one-cycle: rising from {first} to {peak} over {shape.rise_share:.0%} of the log, then decaying "
                f"to {last}")
    else:
        text = {
            "constant": f"constant LR {peak}",
            "rising": f"LR rising from {first} to {last} over the whole log (a warmup cut short, or an LR range test)",
            "warmup_constant": f"{warm}constant",
            "linear": f"{warm}linear decay to {last}",
            "cosine": f"{warm}cosine decay to {last}",
            "exponential": f"{warm}exponential decay to {last}",
            "decay": f"{warm}a smooth decay to {last} (not linear, cosine or exponential)",
            "cyclic": f"cyclic LR with peaks at {peak}",
            "cosine_warm_restarts": f"cosine annealing with warm restarts (peak {peak})",
        }[shape.kind]
    warmup = shape.warmup_end if shape.kind in ("warmup_constant", "linear", "cosine", "exponential", "decay") else None
    return Schedule(shape.kind, level, f"{text} (read from the LR logged per {_unit_name(data, level)})",
                    warmup=warmup, peak=shape.peak, final=shape.last)


def _unit_name(data: RunData, level: str) -> str:
    return "step" if level == "step" else data.units().noun


def _constant_factor(factors: list[float]) -> float | None:
    """The cuts' common factor (a last, smaller cut may stop at a floor); None when they differ."""
    if not factors or any(not (0 < f < 1) for f in factors):
        return None
    f = float(np.median(factors[:-1] if len(factors) > 2 else factors))
    if all(math.isclose(v, f, rel_tol=FACTOR_RTOL) for v in factors[:-1]) and \
            (math.isclose(factors[-1], f, rel_tol=FACTOR_RTOL) or factors[-1] > f):
        return f
    return None


def _cuts(data: RunData, level: str, shape: Shape, stated: dict) -> Schedule:
    factor = _constant_factor(shape.factors)
    where = _where_all(data, level, shape.cut_at)
    warm = f"warmup to {lr_text(shape.peak)} until {_where(data, level, shape.warmup_end)}, then " \
        if shape.warmup_end is not None else ""
    by = f"by ×{factor:.3g}" if factor is not None else "by " + and_list([f"×{f:.3g}" for f in shape.factors])
    floored = factor is not None and shape.factors[-1] > factor and not math.isclose(shape.factors[-1], factor,
                                                                                    rel_tol=FACTOR_RTOL)
    floor = float(shape.last) if floored else 0.0
    plateau = _plateau_match(data, factor, floor, stated) if factor is not None else None
    out = Schedule("step", level, warmup=shape.warmup_end, peak=shape.peak, final=shape.last, factor=factor,
                   cuts=[int(c) if float(c).is_integer() else c for c in shape.cut_at])
    if plateau is not None:
        p = plateau
        rule = (f"torch's ReduceLROnPlateau (patience {p['patience']}" if p["semantics"] == "torch"
                else f"Keras's ReduceLROnPlateau (patience {p['patience']}")
        extra = "".join([f", threshold {p['threshold']:g}" if p["threshold"] != 1e-4 else "",
                         f", cooldown {p['cooldown']}" if p["cooldown"] else ""])
        lag = "; the logged LR is the one in force during each evaluation" if p["lr_logged"] == "during" else ""
        out.kind, out.plateau = "plateau", p
        out.description = (f"{warm}plateau cuts {by} at {where}: each follows a stall of the validation loss and "
                           f"{rule}{extra}) replays them exactly{lag}")
        return out
    stall = "" if data.col("val_loss") is not None else " (no validation loss logged: plateau cuts cannot be told " \
                                                         "from step cuts)"
    out.description = f"{warm}step cuts {by} at {where}{stall}"
    return out


def _observed_cuts(data: RunData) -> tuple[list[int], np.ndarray, float] | None:
    """Positions of the evaluation-level cuts, the logged LR per point and the LR before the first."""
    lr = data.col("lr")
    cuts = data.lr_cuts()
    if lr is None or cuts is None:
        return None
    start = data.col("lr_start")
    before = start[0] if start is not None and math.isfinite(start[0]) else next(
        (float(v) for v in lr if math.isfinite(v)), None)
    if before is None:
        return None
    return [data.ids.index(e) for e, _, _ in cuts], lr, float(before)


def _plateau_match(data: RunData, factor: float, floor: float, stated: dict) -> dict | None:
    """The simplest plateau setting that replays the logged cuts (see the module's docstring)."""
    val = data.col("val_loss")
    observed = _observed_cuts(data)
    if val is None or observed is None or not observed[0]:
        return None
    cuts, _, lr0 = observed
    if not lr0 > 0:
        return None
    gaps = {b - a for a, b in zip(cuts, cuts[1:])}
    # StepLR(step_size=k) cuts after points k-1, 2k-1, ...: the logged LR shows them at k-1 (the LR
    # after each point) or at k (the LR during it)
    periodic = len(cuts) >= 2 and len(gaps) == 1 and cuts[0] - next(iter(gaps)) in (-1, 0)
    if periodic and len(cuts) >= 3:
        return None  # three or more cuts every k points from the start: StepLR
    # Two cuts every k points from the start look like StepLR too: a plateau reading must then
    # replay them with the default threshold and no cooldown, not with a tuned setting.
    thresholds = (THRESHOLDS[0],) if periodic else THRESHOLDS
    cooldowns = (0,) if periodic else COOLDOWNS
    fmt = (data.meta.get("source") or {}).get("format") if isinstance(data.meta.get("source"), dict) else None
    order = ("keras", "torch") if fmt == "keras" else ("torch", "keras")
    val_list = [float(v) for v in val]
    logged = data.logged("lr")
    last_known = bool(logged[-1]) if len(logged) else True
    for threshold in (stated["threshold"],) if "threshold" in stated else thresholds:
        for cooldown in (stated["cooldown"],) if "cooldown" in stated else cooldowns:
            for lag, logged in ((1, "during"), (0, "after")) if fmt == "keras" else ((0, "after"), (1, "during")):
                decided = [c - lag for c in cuts]
                if min(decided) < 0:
                    continue
                for semantics in order:
                    p = _patience(val_list, decided, semantics, threshold, cooldown, factor, lr0, floor, stated, lag,
                                  last_known)
                    if p is not None:
                        return {"patience": p, "factor": factor, "threshold": threshold, "cooldown": cooldown,
                                "min_lr": floor, "semantics": semantics, "lr_logged": logged}
    return None


def _patience(val: list[float], decided: list[int], semantics: str, threshold: float, cooldown: int,
              factor: float, lr0: float, floor: float, stated: dict, lag: int, last_known: bool = True) -> int | None:
    first = 1 if semantics == "keras" else 0  # Keras's patience 0 cuts like its patience 1
    patiences = (stated["patience"],) if "patience" in stated else range(first, MAX_PATIENCE + 1)
    # an LR logged during each point cannot show the last point's cut, nor can a last LR the log lacks
    seen = len(val) - (1 if lag or not last_known else 0)
    for p in patiences:
        if semantics == "torch":
            lrs = simulate_plateau(val, lr0, p, factor, threshold, "rel", cooldown, floor)
            sim = [i for i, (a, b) in enumerate(zip([lr0] + lrs, lrs)) if b < a]
        else:
            sim = keras_plateau_cuts(val, p, threshold, cooldown)
        if [c for c in sim if c < seen] == decided:
            return p
    return None


def describe_settings(schedule: Schedule) -> str:
    """The assumption sentence for a schedule read from the log."""
    return f"no scheduler stated: the LR schedule was inferred from the logged LR: {schedule.description}"


def plateau_skip(kind: str | None) -> str:
    """The "Not checked" line when the plateau checks do not run on an inferred schedule ``kind``."""
    if kind is None or kind == "unknown":
        return (f"scheduler unknown (no config states it and no LR is logged to infer it from): the plateau checks "
                f"({PLATEAU_CHECKS}) not run; pass the config's scheduler to run them")
    if kind == "constant":
        return (f"scheduler not stated and the logged LR is constant: a ReduceLROnPlateau that never cut looks the "
                f"same, so the plateau checks ({PLATEAU_CHECKS}) not run; pass scheduler='plateau' to run them")
    return (f"scheduler inferred from the logged LR: {KIND_NAMES.get(kind, kind)}, not ReduceLROnPlateau: the "
            f"plateau checks ({PLATEAU_CHECKS}) not run")


__all__ = ["KIND_NAMES", "PLATEAU_CHECKS", "Schedule", "describe_settings", "infer_schedule", "plateau_skip"]

"""The round's expectations: measurable predictions from the screen, checked on the final runs.

``derive`` reads only the *screening* runs (the round's config for ``screen_epochs`` epochs,
and the unchanged config's first as many epochs, same seeds) and writes predictions about
the *final verification* runs (both configs at full length): epochs the screen never saw.
``Prediction.check`` then marks each one ``"held"`` or ``"not held"`` with the per-seed numbers.
Each bound leaves the longer run room (twice the screen's value, or the finding's own line),
and says so in its ``basis``.

The predictions (each only where it applies):

beats_unchanged
    The best validation loss is below the unchanged config's on every seed (when the screen
    won every seed), else on most seeds.
effect
    The median relative reduction of the best validation loss is at least half the screen's.
late_clipping
    When the run was clipped heavily or its norms grew (and clipping is on): the share of
    steps clipped in the last two epochs (``measures.clip_fraction`` of their step rows) is,
    on every seed, below the smallest of 10%, 20%, 50% (the Playbook's "about half") that is
    at least twice the screen's largest (none when the screen clipped more than 25%).
gradient_growth
    When the norms grew: ``RunData.growth("p50")`` (late third over epoch 0) below the
    smallest of 2x (GRADIENT_GROWTH's line), 3x, 5x, 10x at least twice the screen's largest.
lr_cut
    When the round changes the plateau patience: the LR is cut at least once on every seed,
    where ``nbtrain.plateau_state`` on the screen's validation losses projects the next cut
    within the run (assuming nothing improves after the screen).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import measures
from ..diagnosis.checks.clipping import HEAVY_CLIP_FRACTION
from ..diagnosis.checks.gradients import GROWTH_RATIO
from ..diagnosis.findings import GRADIENT_GROWTH, GRADIENT_SPIKES, HEAVY_CLIPPING
from ..diagnosis.formatting import sig
from ..diagnosis.plateau import plateau_state
from ..diagnosis.run_data import RunData
from ..diagnosis.summary import summarize
from ..diagnosis.verdicts import HELD, NOT_HELD
from ..training.config import TrainConfig
from .candidates import epochs_text

CLIP_BOUNDS = (0.1, 0.2, HEAVY_CLIP_FRACTION)
GROWTH_BOUNDS = (GROWTH_RATIO, 3.0, 5.0, 10.0)
ROOM = 2.0  # a bound is at least this many times the screen's value
LATE_EPOCHS = 2


@dataclass
class Pair:
    """The round's config and the unchanged config on the same seeds: ``seed -> RunData``."""

    round: dict
    unchanged: dict
    config: TrainConfig  # the round's config
    epochs: int

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.round) & set(self.unchanged))


@dataclass
class Expectation:
    """A prediction of the round and whether the final runs bore it out."""

    name: str
    claim: str  # the prediction, as a person would check it
    status: str  # "held" or "not held"
    basis: str  # where the prediction came from (the screen's numbers)
    evidence: dict = field(default_factory=dict)  # per seed (or the median): the measured value
    detail: str = ""

    @property
    def held(self) -> bool:
        return self.status == HELD


@dataclass
class Prediction:
    """``metric(pair, seed) <op> bound`` on ``need`` seeds (None: on the median over seeds)."""

    name: str
    claim: str
    basis: str
    metric: Callable[[Pair, int], float | None]
    op: str  # "<", "<=", ">" or ">="
    bound: float
    need: int | None

    def check(self, final: Pair) -> Expectation:
        values = {s: self.metric(final, s) for s in final.seeds}
        ok = {s: v is not None and _compare(v, self.op, self.bound) for s, v in values.items()}
        if self.need is None:
            got = [v for v in values.values() if v is not None]
            med = statistics.median(got) if got else None
            held = med is not None and _compare(med, self.op, self.bound)
            detail = f"median {_show(med)} over {len(got)} seeds ({_per_seed(values)})"
        else:
            held = sum(ok.values()) >= self.need
            detail = f"{sum(ok.values())} of {len(values)} seeds ({_per_seed(values)})"
        return Expectation(self.name, self.claim, HELD if held else NOT_HELD, self.basis,
                           {str(s): v for s, v in values.items()}, detail)


def _compare(v: float, op: str, bound: float) -> bool:
    return {"<": v < bound, "<=": v <= bound, ">": v > bound, ">=": v >= bound}[op]


def _show(v: Any) -> str:
    return "n/a" if v is None else sig(v, 3)


def _per_seed(values: dict) -> str:
    return ", ".join(f"seed {s}: {_show(v)}" for s, v in values.items())


# -- metrics: one number per seed, from nbtrain.measures / RunData --------------------------------
def _best(data: RunData) -> float | None:
    return summarize(data)["best_val_loss"]


def relative_best(pair: Pair, seed: int) -> float | None:
    """``(round - unchanged) / unchanged`` of the best validation loss."""
    r = measures.ratio(_best(pair.round[seed]), _best(pair.unchanged[seed]))
    return None if r is None else r - 1.0


def late_clip_fraction(pair: Pair, seed: int) -> float | None:
    """Share of the steps of the last two epochs that were clipped (``measures.clip_fraction``)."""
    data = pair.round[seed]
    if data.steps is None or "clipped" not in data.steps.columns or data.n_epochs < LATE_EPOCHS:
        return None
    last = data.epoch_numbers[-LATE_EPOCHS:]
    rows = data.steps[data.steps["epoch"].isin(last)]
    return measures.clip_fraction(clipped=rows["clipped"].tolist())[0]


def growth_p50(pair: Pair, seed: int) -> float | None:
    g = pair.round[seed].growth("p50")
    return None if g is None else g.ratio


def lr_cuts(pair: Pair, seed: int) -> float | None:
    cuts = pair.round[seed].lr_cuts(pair.config.lr)
    return None if cuts is None else float(len(cuts))


# -- deriving the predictions from the screen ------------------------------------------------------
def _values(screen: Pair, metric) -> list[float]:
    return [v for v in (metric(screen, s) for s in screen.seeds) if v is not None]


def _beats(screen: Pair, epochs: int) -> list[Prediction]:
    rel = {s: relative_best(screen, s) for s in screen.seeds}
    wins = sum(1 for v in rel.values() if v is not None and v < 0)
    n = len(screen.seeds)
    need = n if wins == n else n // 2 + 1
    which = "every seed" if need == n else f"at least {need} of {n} seeds"
    basis = f"the screen ({epochs_text(screen.epochs)}) won {wins} of {n} seeds ({_per_seed(rel)} relative change)"
    out = [Prediction("beats_unchanged", f"Best validation loss within {epochs} epochs below the unchanged "
                      f"config's on {which}", basis, relative_best, "<", 0.0, need)]
    got = [v for v in rel.values() if v is not None]
    half = math.floor(50 * -statistics.median(got)) if got else 0
    if half >= 1:
        out.append(Prediction(
            "effect", f"Best validation loss at least {half}% below the unchanged config's (median over seeds)",
            f"the screen's median change was {statistics.median(got):+.1%}; half of that reduction, rounded down",
            relative_best, "<=", -half / 100.0, None))
    return out


def _clipping(screen: Pair, epochs: int) -> list[Prediction]:
    got = _values(screen, late_clip_fraction)
    if not got or screen.config.grad_clip is None:
        return []
    hi = max(got)
    bound = next((b for b in CLIP_BOUNDS if b >= ROOM * hi and b > hi), None)
    if bound is None:  # the screen clipped too much to support a bound under the Playbook's line
        return []
    shown = ", ".join(f"{v:.0%}" for v in got)
    where = f"epochs {epochs - LATE_EPOCHS}-{epochs - 1}"
    return [Prediction("late_clipping", f"Clip fraction in the last two epochs ({where}) below {bound:.0%} on "
                       "every seed", f"the screen's last two epochs clipped {shown}; the bound leaves twice the "
                       "largest", late_clip_fraction, "<", bound, len(screen.seeds))]


def _growth(screen: Pair, epochs: int) -> list[Prediction]:
    got = _values(screen, growth_p50)
    if not got:
        return []
    bound = next((b for b in GROWTH_BOUNDS if b >= ROOM * max(got)), None)
    if bound is None:
        return []
    shown = ", ".join(f"{v:.2f}x" for v in got)
    return [Prediction("gradient_growth", f"Median pre-clip gradient norm of the last third of the {epochs} epochs "
                       f"below {bound:g}x epoch 0's on every seed", f"the screen's growth was {shown}; the bound "
                       "leaves twice the largest", growth_p50, "<", bound, len(screen.seeds))]


def _lr_cut(screen: Pair, epochs: int) -> list[Prediction]:
    c = screen.config
    kwargs = measures.plateau_kwargs(c)
    projected = {}
    for s in screen.seeds:
        val = screen.round[s].col("val_loss")
        state = plateau_state([float(v) for v in val], c.lr, **kwargs) if val is not None else None
        cut = None if state is None else (state.cuts[0][0] if state.cuts else state.next_cut_epoch)
        projected[s] = cut
    if not projected or not all(p is not None and p <= epochs - 1 for p in projected.values()):
        return []
    where = ", ".join(f"seed {s}: epoch {p}" for s, p in projected.items())
    return [Prediction("lr_cut", f"The LR is cut at least once within {epochs} epochs on every seed",
                       f"ReduceLROnPlateau replayed on the screen's validation losses with patience "
                       f"{c.scheduler_patience} projects the first cut at {where} if nothing improves",
                       lr_cuts, ">=", 1.0, len(screen.seeds))]


def derive(screen: Pair, epochs: int, findings: set[str], changes: dict) -> list[Prediction]:
    """The predictions the screen supports for runs of ``epochs`` epochs (see the module docstring)."""
    out = _beats(screen, epochs)
    if findings & {HEAVY_CLIPPING, GRADIENT_GROWTH, GRADIENT_SPIKES}:
        out += _clipping(screen, epochs)
    if GRADIENT_GROWTH in findings:
        out += _growth(screen, epochs)
    if "scheduler_patience" in changes and measures.uses_plateau(screen.config):
        out += _lr_cut(screen, epochs)
    return out


__all__ = ["Expectation", "Pair", "Prediction", "derive", "growth_p50", "late_clip_fraction", "lr_cuts",
           "relative_best"]

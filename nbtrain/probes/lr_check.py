"""Check an LR suggestion with short trainings: ``check_lr_suggestion`` and its table, ``LRCheck``.

A range test reads a few hundred steps of one sweep; whether its suggestion trains well is a
question for trainings. ``check_lr_suggestion`` trains the config for a few epochs at the
suggestion and at LRs around it, once per seed, and compares.

Definitions
-----------
score of a training
    Its best validation loss (``nbtrain.summarize``'s ``best_val_loss``, the same number a
    sweep reports); a training with no finite validation loss (diverged) scores infinity.
score of an LR
    The mean of its trainings' scores over the seeds.
best LR
    The LR of the grid (the suggestion included) with the lowest score.
factor
    How far the suggestion is from the best LR: ``max(s / best, best / s)`` (1 when the
    suggestion is the best).
loss ratio
    The suggestion's score over the best LR's score (1 when the suggestion is the best).
holds
    ``factor <= within`` (default 3) and ``loss_ratio <= tolerance`` (default 2), each with
    1e-9 of relative slack for rounding: the suggestion lies within a factor of three of the
    best LR tried, and its trainings end within twice the best LR's validation loss. On the
    default grid (x1/9, x1/3, x1, x3, x9) the first says: the best of a two-decade bracket
    is the suggestion or a neighbour.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from torch import nn

from ..diagnosis.summary import summarize
from ..training.config import TrainConfig
from ..training.trainer import train
from ._common import LossFn, check_int, check_positive
from .lr_range import LRRangeResult

ModelFn = Callable[[int], nn.Module]  # seed -> a freshly initialised model


@dataclass
class LRCheck:
    """Short trainings at a grid of LRs around a suggestion (see the module's definitions)."""

    suggestion: float
    rows: list[dict]  # one per training: lr, seed, best_val_loss, best_epoch, status, seconds
    epochs: int
    seeds: tuple[int, ...]
    within: float = 3.0
    tolerance: float = 2.0
    lrs: list[float] = field(default_factory=list)  # the grid, ascending, the suggestion included

    def score(self, lr: float) -> float:
        """Mean best validation loss over the seeds at ``lr`` (inf when a training had none)."""
        values = [r["best_val_loss"] for r in self.rows if math.isclose(r["lr"], lr, rel_tol=1e-9)]
        if not values:
            raise ValueError(f"lr {lr!r} was not trained in this check")
        return math.inf if any(v is None for v in values) else sum(values) / len(values)

    @property
    def best_lr(self) -> float:
        return min(self.lrs, key=self.score)

    @property
    def factor(self) -> float:
        return max(self.suggestion / self.best_lr, self.best_lr / self.suggestion)

    @property
    def loss_ratio(self) -> float:
        best = self.score(self.best_lr)
        return self.score(self.suggestion) / best if best > 0 else math.inf

    @property
    def holds(self) -> bool:
        slack = 1 + 1e-9  # rounding: a grid step of exactly 3x is within 3x
        return self.factor <= self.within * slack and self.loss_ratio <= self.tolerance * slack

    @property
    def seconds(self) -> float:
        return sum(r["seconds"] for r in self.rows)

    def to_dataframe(self):
        """One row per LR: the score, each seed's best validation loss, and which is the suggestion and the best."""
        import pandas as pd

        table = pd.DataFrame(self.rows).pivot(index="lr", columns="seed", values="best_val_loss")
        table.columns = [f"seed {s}" for s in table.columns]
        table.insert(0, "mean", [self.score(lr) for lr in table.index])
        table["suggested"] = [math.isclose(lr, self.suggestion, rel_tol=1e-9) for lr in table.index]
        table["best"] = [lr == self.best_lr for lr in table.index]
        return table

    def verdict(self) -> str:
        """One sentence: where the suggestion stands against the best LR tried."""
        word = "holds" if self.holds else "does not hold"
        return (
            f"suggestion {self.suggestion:.3g} {word}: best LR tried {self.best_lr:.3g} (mean best validation loss "
            f"{self.score(self.best_lr):.4g}), suggestion {self.factor:.2g}x from it (allowed {self.within:g}x), "
            f"its loss {self.loss_ratio:.2f}x the best (allowed {self.tolerance:g}x); {len(self.rows)} trainings of "
            f"{self.epochs} epochs, {self.seconds:.0f} s"
        )

    def to_markdown(self) -> str:
        head = "| lr | " + " | ".join(f"seed {s}" for s in self.seeds) + " | mean | |"
        lines = [head, "|---:|" + "---:|" * (len(self.seeds) + 1) + "---|"]
        for lr in self.lrs:
            cells = []
            for s in self.seeds:
                v = next(r["best_val_loss"] for r in self.rows if r["seed"] == s and math.isclose(r["lr"], lr))
                cells.append("diverged" if v is None else f"{v:.4g}")
            mark = ", ".join(w for w, on in (("suggested", math.isclose(lr, self.suggestion)),
                                            ("best", lr == self.best_lr)) if on)
            lines.append(f"| {lr:.3g} | " + " | ".join(cells) + f" | {self.score(lr):.4g} | {mark} |")
        return "\n".join(lines) + f"\n\n{self.verdict()}.\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _grid(suggestion: float, lrs: Sequence[float] | None) -> list[float]:
    grid = [suggestion * 3.0**k for k in (-2, -1, 1, 2)] if lrs is None else [float(v) for v in lrs]
    for v in grid:
        check_positive("lrs", v)
    if not any(math.isclose(v, suggestion, rel_tol=1e-9) for v in grid):
        grid.append(suggestion)
    return sorted(set(grid))


def _one(config: TrainConfig, model_fn, train_data, val_data, loss_fn) -> dict:
    t = time.perf_counter()
    model = None if model_fn is None else model_fn(config.seed)
    run = train(config, model, train_data, val_data, loss_fn, sink=None)
    s = summarize(run.history, run.config)
    return {"lr": config.lr, "seed": config.seed, "best_val_loss": s["best_val_loss"], "best_epoch": s["best_epoch"],
            "status": run.status, "seconds": time.perf_counter() - t}


def check_lr_suggestion(
    config: TrainConfig,
    suggestion: float | LRRangeResult,
    lrs: Sequence[float] | None = None,
    *,
    epochs: int = 3,
    seeds: Sequence[int] = (0, 1),
    within: float = 3.0,
    tolerance: float = 2.0,
    model_fn: ModelFn | None = None,
    train_data=None,
    val_data=None,
    loss_fn: LossFn | None = None,
    sink: Callable[[str], None] | None = None,
) -> LRCheck:
    """Train ``config`` for ``epochs`` epochs at each LR of the grid and each seed; an ``LRCheck``.

    ``suggestion``: an LR, or an ``LRRangeResult`` (its ``suggestion``). ``lrs``: the grid
    (the suggestion is added when missing); default, factors of 3 around the suggestion
    (x1/9, x1/3, x1, x3, x9), 5 LRs. Every training is ``config`` with that ``lr``,
    ``seed`` and ``epochs`` (the rest, scheduler and clipping included, as given), trained
    one after another in this process. ``model_fn(seed)`` with ``train_data`` and
    ``val_data``: your own model and data; without them, the reference experiment.
    ``within`` and ``tolerance``: what ``holds`` allows (the module's definitions).
    ``sink`` receives one line per training. Cost: ``len(lrs) x len(seeds)`` trainings of
    ``epochs`` epochs; on the reference experiment (one thread, fused Adam) about 1.3 s an
    epoch on a quiet machine and up to about 2.4 s under load: the default 5 LRs x 2 seeds
    x 3 epochs took 40 s (2026-12-01).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    value = suggestion.suggestion if isinstance(suggestion, LRRangeResult) else suggestion
    check_positive("suggestion", value)
    check_int("epochs", epochs, 1)
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError(f"seeds must name at least one seed, got {seeds!r}")
    check_positive("within", within)
    check_positive("tolerance", tolerance)
    if (model_fn is None) != (train_data is None) or (train_data is None) != (val_data is None):
        raise ValueError("give model_fn, train_data and val_data together, or none of them (the reference experiment)")
    grid = _grid(float(value), lrs)
    rows = []
    for lr in grid:
        for seed in seeds:
            row = _one(config.replace(lr=lr, seed=seed, epochs=epochs), model_fn, train_data, val_data, loss_fn)
            rows.append(row)
            if sink is not None:
                best = "none" if row["best_val_loss"] is None else f"{row['best_val_loss']:.4g}"
                sink(f"lr {lr:.3g} seed {seed}: best validation loss {best} ({row['seconds']:.1f} s)")
    return LRCheck(float(value), rows, epochs, seeds, within=within, tolerance=tolerance, lrs=grid)


__all__ = ["LRCheck", "check_lr_suggestion"]

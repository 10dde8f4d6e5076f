"""The round-1 symptoms of the researcher's write-up, as measurable criteria.

The write-up described three symptoms of its round-1 run (lr 2e-5, clip 2.0, patience 5):
gradient norms that grew epoch by epoch ("mostly < 2" in epoch 0, "12-18" by epochs 5-6),
validation loss that stopped improving steadily, and a learning rate that never moved.
``round1_symptoms`` measures each from a History, so the reference experiment's claim to
reproduce them is a test, not a picture. Its growth numbers are ``RunData.growth`` (the
definition in ``nbtrain.measures``), the same ones ``summarize`` and ``diagnose`` show.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from .. import measures
from .run_data import RunData, as_run_data

MIN_LATE_CLIP_FRACTION = 0.10  # 1d when epoch 0 clipped nothing: share of the late epochs' steps clipped


def _growth(data: RunData, norms: dict[int, list], late_epochs: tuple[int, ...], stat: str) -> measures.Growth | None:
    """``RunData.growth(stat)`` when ``late_epochs`` is the run's late window (epochs 5-6 of a
    7-epoch run); otherwise the same definition (the statistic of the pooled norms of
    ``late_epochs`` over epoch 0's) with the given epochs as the window."""
    growth = data.growth(stat)
    if growth is not None and growth.first_epoch == 0 and growth.late_epochs == tuple(late_epochs):
        return growth
    pooled = [v for e in late_epochs for v in norms[e]]
    growth = measures.growth_from_steps({0: norms[0], 1: pooled}, stat)  # a two-"epoch" run: window = the 2nd
    return None if growth is None else dataclasses.replace(growth, late_epochs=tuple(late_epochs))


def _clip_row(steps: pd.DataFrame, late_epochs: tuple[int, ...], late_name: str) -> tuple:
    """Criterion 1d: relative to epoch 0 when it clipped anything, else an absolute late share."""
    clip0, _ = measures.clip_fraction(clipped=steps.loc[steps["epoch"] == 0, "clipped"].tolist())
    clip_late, _ = measures.clip_fraction(clipped=steps.loc[steps["epoch"].isin(late_epochs), "clipped"].tolist())
    if clip0 > 0:
        return ("1d", f"clip fraction, epochs {late_name} vs epoch 0", clip_late / clip0, ">= 2x",
                clip_late >= 2 * clip0)
    return ("1d", f"clip fraction, epochs {late_name} (epoch 0 clipped none)", clip_late,
            f">= {MIN_LATE_CLIP_FRACTION:.0%} of steps", clip_late >= MIN_LATE_CLIP_FRACTION)


def _check_input(data: RunData, late_epochs: tuple[int, ...]) -> None:
    steps = data.steps
    if steps is None or not {"epoch", "grad_norm", "clipped"} <= set(steps.columns):
        raise ValueError("round1_symptoms needs step rows with epoch, grad_norm and clipped columns")
    missing = [e for e in (0, *late_epochs) if e not in set(steps["epoch"])]
    if missing:
        raise ValueError(f"the history has no steps for epoch(s) {missing}: train at least {max(late_epochs) + 1} epochs")
    absent = [c for c in ("val_loss", "lr") if data.col(c) is None]
    if absent:
        raise ValueError(f"round1_symptoms needs epoch rows with val_loss and lr, missing: {', '.join(absent)}")


def round1_symptoms(history: Any, late_epochs: tuple[int, ...] = (5, 6)) -> pd.DataFrame:
    """One row per criterion: what was measured, the bar it must clear, and whether it holds.

    Criteria (epochs are 0-based; "late" = ``late_epochs``; growth as in ``RunData.growth``):

    1a. epoch 0's median pre-clip gradient norm is below 2.0;
    1b. max growth: the largest pre-clip norm of the late epochs is at least 3x epoch 0's largest;
    1c. median growth: the median of the late epochs' pooled norms is above epoch 0's median;
    1d. the late epochs' clip fraction is at least twice epoch 0's; when epoch 0 clipped no step,
        at least ``MIN_LATE_CLIP_FRACTION`` (10%) of the late epochs' steps are clipped instead
        (``measured`` is then that fraction, never an infinite ratio);
    2.  the best validation loss comes at epoch 1-4 (2a) and at least 2 later epochs are worse (2b);
    3.  the learning rate was never cut (``measures.lr_cuts``).

    ``measured`` is a float in every row: ratios for 1b-1d, a norm for 1a, and for 2a, 2b and 3
    a count or an epoch number as a float. Needs step rows (``grad_norm``, ``clipped``) and
    epoch rows (``val_loss``, ``lr``).
    """
    data = as_run_data(history)
    _check_input(data, late_epochs)
    norms = data.norms_by_epoch()
    late_name = f"{late_epochs[0]}-{late_epochs[-1]}"
    g50, gmax = (_growth(data, norms, tuple(late_epochs), stat) for stat in ("p50", "max"))
    median0 = measures.percentile(norms[0], 50)
    max_growth = gmax.ratio if gmax else float("nan")
    p50_growth = g50.ratio if g50 else float("nan")
    val, epochs = data.col("val_loss"), data.epoch_numbers
    i_best = int(np.nanargmin(val))
    worse_after = int(np.sum(val[i_best + 1:] > val[i_best]))
    cuts = data.lr_cuts(initial_lr=float(data.col("lr")[0]))
    rows = [
        ("1a", "epoch 0 median grad norm < 2", median0, "< 2.0", median0 < 2.0),
        ("1b", f"max grad norm, epochs {late_name} vs epoch 0", max_growth, ">= 3x", max_growth >= 3),
        ("1c", f"median grad norm, epochs {late_name} vs epoch 0", p50_growth, "> 1x", p50_growth > 1),
        _clip_row(data.steps, tuple(late_epochs), late_name),
        ("2a", "epoch of the best validation loss", epochs[i_best], "1-4", 1 <= epochs[i_best] <= 4),
        ("2b", "later epochs worse than the best", worse_after, ">= 2", worse_after >= 2),
        ("3", "LR cuts", len(cuts), "0", not cuts),
    ]
    return pd.DataFrame(
        [{"id": i, "criterion": c, "measured": float(m), "bar": b, "holds": bool(h)} for i, c, m, b, h in rows]
    )


def symptoms_hold(history: Any, late_epochs: tuple[int, ...] = (5, 6)) -> bool:
    """True when every round-1 criterion holds."""
    return bool(round1_symptoms(history, late_epochs)["holds"].all())


__all__ = ["MIN_LATE_CLIP_FRACTION", "round1_symptoms", "symptoms_hold"]

"""The round-1 symptoms of the researcher's write-up, as measurable criteria.

The write-up described three symptoms of its round-1 run (lr 2e-5, clip 2.0, patience 5):
gradient norms that grew epoch by epoch ("mostly < 2" in epoch 0, "12-18" by epochs 5-6),
validation loss that stopped improving steadily, and a learning rate that never moved.
``round1_symptoms`` measures each from a History, so the reference experiment's claim to
reproduce them is a test, not a picture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .run_data import as_run_data


def round1_symptoms(history: Any, late_epochs: tuple[int, ...] = (5, 6)) -> pd.DataFrame:
    """One row per criterion: what was measured, the bar it must clear, and whether it holds.

    Criteria (epochs are 0-based; "late" = ``late_epochs``):

    1a. epoch 0's median pre-clip gradient norm is below 2.0;
    1b. the largest pre-clip norm of the late epochs is at least 3x epoch 0's largest;
    1c. the late epochs' median norm is above epoch 0's;
    1d. the late epochs' clip fraction is at least twice epoch 0's;
    2.  the best validation loss comes at epoch 1-4 and at least 2 later epochs are worse;
    3.  the learning rate never changed.

    Needs step rows (``grad_norm``, ``clipped``) and epoch rows (``val_loss``, ``lr``).
    """
    data = as_run_data(history)
    steps = data.steps
    if steps is None or not {"epoch", "grad_norm", "clipped"} <= set(steps.columns):
        raise ValueError("round1_symptoms needs step rows with epoch, grad_norm and clipped columns")
    epochs = data.epochs
    missing = [e for e in (0, *late_epochs) if e not in set(steps["epoch"])]
    if missing:
        raise ValueError(f"the history has no steps for epoch(s) {missing}: train at least {max(late_epochs) + 1} epochs")
    norms0 = steps.loc[steps["epoch"] == 0, "grad_norm"].to_numpy(float)
    late = steps["epoch"].isin(late_epochs)
    norms_late = steps.loc[late, "grad_norm"].to_numpy(float)
    clip0 = float(steps.loc[steps["epoch"] == 0, "clipped"].astype(float).mean())
    clip_late = float(steps.loc[late, "clipped"].astype(float).mean())
    val = epochs["val_loss"].to_numpy(float)
    best = int(np.nanargmin(val))
    worse_after = int(np.sum(val[best + 1 :] > val[best]))
    lrs = epochs["lr"].to_numpy(float)
    lr_start = float(epochs["lr_start"].iloc[0]) if "lr_start" in epochs.columns else float(lrs[0])
    late_name = "-".join(str(e) for e in (late_epochs[0], late_epochs[-1]))
    rows = [
        ("1a", "epoch 0 median grad norm < 2", np.median(norms0), "< 2.0", np.median(norms0) < 2.0),
        (
            "1b",
            f"max grad norm, epochs {late_name} vs epoch 0",
            norms_late.max() / norms0.max(),
            ">= 3x",
            norms_late.max() >= 3 * norms0.max(),
        ),
        (
            "1c",
            f"median grad norm, epochs {late_name} vs epoch 0",
            np.median(norms_late) / np.median(norms0),
            "> 1x",
            np.median(norms_late) > np.median(norms0),
        ),
        (
            "1d",
            f"clip fraction, epochs {late_name} vs epoch 0",
            clip_late / clip0 if clip0 > 0 else float("inf"),
            ">= 2x",
            clip_late >= 2 * clip0 and clip_late > 0,
        ),
        ("2a", "epoch of the best validation loss", best, "1-4", 1 <= best <= 4),
        ("2b", "later epochs worse than the best", worse_after, ">= 2", worse_after >= 2),
        ("3", "LR cuts", int(np.sum(lrs != lr_start)), "0", bool(np.all(lrs == lr_start))),
    ]
    return pd.DataFrame(
        [{"id": i, "criterion": c, "measured": float(m), "bar": b, "holds": bool(h)} for i, c, m, b, h in rows]
    )


def symptoms_hold(history: Any, late_epochs: tuple[int, ...] = (5, 6)) -> bool:
    """True when every round-1 criterion holds."""
    return bool(round1_symptoms(history, late_epochs)["holds"].all())

"""Hand-made Histories for the diagnostics, expectations, plots and compare tests.

``make_history`` builds step and epoch rows the way the trainer does (same columns, the
per-epoch statistics of ``nbtrain.measures.epoch_stats``), with the LR column produced by
torch's rules via the simulator.
"""

from __future__ import annotations

import math

import pandas as pd

from nbtrain import History, TrainConfig
from nbtrain.diagnosis.plateau import simulate_plateau
from nbtrain.measures import epoch_stats, plateau_kwargs

SEED_VAL = [0.8294, 0.5869, 0.6093, 0.6127, 0.6011, 0.5884]
SEED_MAX_NORM = [2, 6, 7, 14, 16, 18]
SEED_CONFIG = TrainConfig(lr=2e-5, grad_clip=2.0, scheduler_patience=5)

HEALTHY_VAL = [1.0, 0.8, 0.7, 0.65, 0.62, 0.6201, 0.6202, 0.6203, 0.58, 0.55, 0.53, 0.51]
HEALTHY_CONFIG = TrainConfig(lr=1e-3, grad_clip=5.0, scheduler_patience=2, epochs=12, name="healthy")


def seed_frame() -> pd.DataFrame:
    """Only the write-up's numbers: epochs 0-5, val loss, LR, largest grad norm."""
    return pd.DataFrame(
        {"epoch": range(6), "val_loss": SEED_VAL, "lr": [2e-5] * 6, "grad_norm_max": SEED_MAX_NORM}
    )


def make_history(
    val: list[float],
    train: list[float] | None = None,
    norms: list[list[float]] | None = None,
    config: TrainConfig = HEALTHY_CONFIG,
    lr: list[float] | None = None,
) -> History:
    """Step rows from ``norms`` (one list of pre-clip norms per epoch), epoch rows like the trainer's."""
    n = len(val)
    train = train if train is not None else [1.2 / (1 + 0.3 * e) + 0.1 for e in range(n)]
    norms = norms if norms is not None else [[1.0 + 0.1 * math.sin(e * 20 + i) for i in range(20)] for e in range(n)]
    if lr is None:
        lr = simulate_plateau(val, config.lr, **plateau_kwargs(config))
    clip = config.grad_clip
    h = History(meta={"config": config.to_dict()})
    step = 0
    for e in range(n):
        lr_start = config.lr if e == 0 else lr[e - 1]
        rows = []
        for g in norms[e]:
            clipped = clip is not None and g > clip
            rows.append({"epoch": e, "step": step, "loss": train[e], "grad_norm": float(g), "clipped": clipped,
                         "clip_factor": min(1.0, clip / (g + 1e-6)) if clipped else 1.0, "lr": lr_start})
            step += 1
        for r in rows:
            h.add_step(r)
        h.add_epoch({"epoch": e, "val_loss": val[e], "lr": lr[e], "lr_start": lr_start, **epoch_stats(rows),
                     "epoch_time_s": 0.1})
    return h


def healthy_history() -> History:
    """Smoothly falling losses, flat small norms, one clipped step, an LR cut where torch makes it."""
    norms = [[1.0 + 0.1 * math.sin(e * 20 + i) for i in range(20)] for e in range(len(HEALTHY_VAL))]
    norms[3][5] = 5.5  # one clip in 240 steps
    return make_history(HEALTHY_VAL, norms=norms)


def growing_norms(n: int, start: float = 1.0, factor: float = 1.6, steps: int = 20) -> list[list[float]]:
    return [[start * factor**e * (0.8 + 0.4 * i / steps) for i in range(steps)] for e in range(n)]

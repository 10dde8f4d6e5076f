"""Headline numbers of one run, the same ones in comparisons, sweeps and the demo."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import measures
from .run_data import as_run_data
from .settings import resolve_settings


def summarize(history: Any, config: Any = None) -> dict:
    """Headline numbers of one run (JSON-safe; None where the log lacks the data).

    ``grad_norm_growth_p50`` / ``_max`` are ``RunData.growth`` (defined in
    ``nbtrain.measures``): the late third of the epochs against the first epoch.
    ``lr_cuts`` counts the logged cuts (``measures.lr_cuts``) of a run with the plateau scheduler,
    an unknown one, or one read from the log as step cuts or a constant LR (None for other
    schedulers, whose LR moves at every step).
    """
    data = as_run_data(history)
    settings, _ = resolve_settings(config, data)
    val = data.col("val_loss")
    out: dict[str, Any] = {"epochs": data.n_epochs}
    if val is not None and np.isfinite(val).any():
        i = int(np.nanargmin(np.where(np.isfinite(val), val, np.nan)))
        out.update(best_val_loss=float(val[i]), best_epoch=data.epoch_numbers[i], final_val_loss=float(val[-1]))
    else:
        out.update(best_val_loss=None, best_epoch=None, final_val_loss=None)
    for stat in ("p50", "max"):
        g = data.growth(stat)
        out[f"grad_norm_growth_{stat}"] = None if g is None else g.ratio
    out["clip_fraction"] = data.clip_fraction()[0]
    cuts = data.lr_cuts(settings.lr)
    plateau_or_unknown = measures.uses_plateau(settings) or settings.scheduler in (None, "step", "constant")
    out["lr_cuts"] = len(cuts) if cuts is not None and plateau_or_unknown else None
    lr = data.col("lr")
    out["final_lr"] = float(lr[-1]) if lr is not None else None
    out.update(lr=settings.lr, grad_clip=settings.grad_clip, patience=settings.patience, scheduler=settings.scheduler)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


__all__ = ["summarize"]

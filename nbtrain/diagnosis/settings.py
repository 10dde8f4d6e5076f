"""The settings a diagnosis needs (LR, scheduler, clip threshold), and where each came from."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import measures
from ..training.config import TrainConfig
from .formatting import lr_text, num
from .run_data import RunData


_DEFAULTS = TrainConfig()


@dataclass
class Settings:
    """What the checks need from the config, and where each value came from."""

    lr: float | None
    scheduler: str | None  # "plateau", "cosine_warm_restarts", "none", or None when unknown
    patience: int
    factor: float
    threshold: float
    cooldown: int
    min_lr: float
    grad_clip: float | None
    clip_known: bool  # False when grad_clip is a guess or unknown
    source: str  # "config", "history meta" or "inferred"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def plateau_kwargs(self) -> dict:
        """The keyword arguments of ``simulate_plateau`` / ``plateau_state`` (all but the
        losses and the LR) for these settings: the same ones torch's ``ReduceLROnPlateau``
        gets: ``measures.plateau_kwargs`` (mode ``"min"``, threshold mode ``"rel"``)."""
        return measures.plateau_kwargs(SimpleNamespace(
            scheduler_factor=self.factor,
            scheduler_patience=self.patience,
            scheduler_threshold=self.threshold,
            scheduler_cooldown=self.cooldown,
            min_lr=self.min_lr,
        ))


def _settings_of(c: TrainConfig, source: str) -> Settings:
    """The settings of a TrainConfig (its clip threshold is known)."""
    return Settings(
        lr=c.lr,
        scheduler=c.scheduler,
        patience=c.scheduler_patience,
        factor=c.scheduler_factor,
        threshold=c.scheduler_threshold,
        cooldown=c.scheduler_cooldown,
        min_lr=c.min_lr,
        grad_clip=c.grad_clip,
        clip_known=True,
        source=source,
    )


def resolve_settings(config: Any, data: RunData) -> tuple[Settings, list[str]]:
    """Settings from ``config`` (a TrainConfig or a dict of its fields), else the history's
    ``meta["config"]``, else inferred from the log. Returns them with the assumptions made."""
    assumptions: list[str] = []
    source = "config"
    if config is None and isinstance(data.meta.get("config"), dict):
        config, source = data.meta["config"], "history meta"
        assumptions.append("no config given: used the config stored in the history's meta")
    if isinstance(config, dict):
        try:
            cfg = TrainConfig.from_dict(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config dict is not a valid TrainConfig: {exc}") from exc
        relevant = ("lr", "grad_clip", "scheduler", "scheduler_patience", "scheduler_factor", "scheduler_threshold")
        for name in relevant:
            if name not in config:
                assumptions.append(f"config has no {name!r}: assumed TrainConfig's default {getattr(_DEFAULTS, name)!r}")
        config = cfg
    if isinstance(config, TrainConfig):
        return _settings_of(config, source), assumptions
    if config is not None:
        raise TypeError(f"config must be a TrainConfig, a dict of its fields or None, got {type(config).__name__}")
    return _infer_settings(data, assumptions)


def _infer_settings(data: RunData, assumptions: list[str]) -> tuple[Settings, list[str]]:
    d = _DEFAULTS
    lr = None
    for name, level, what in (("lr_start", "epoch", "epoch 0's lr_start"), ("lr", "step", "the first step's lr"),
                              ("lr", "epoch", "epoch 0's lr (after its scheduler step)")):
        values = data.col(name, level)
        if values is not None and len(values) and math.isfinite(values[0]) and values[0] > 0:
            lr = float(values[0])
            assumptions.append(f"no config: initial LR {lr_text(lr)} taken from {what}")
            break
    epoch_lr = data.col("lr")
    scheduler: str | None = "plateau"
    if epoch_lr is not None and np.any(np.diff(epoch_lr[np.isfinite(epoch_lr)]) > 0):
        scheduler = None
        assumptions.append("no config: the LR rises at some epoch, so the scheduler is not ReduceLROnPlateau")
    else:
        assumptions.append(
            f"no config: assumed ReduceLROnPlateau with nbtrain's defaults (patience {d.scheduler_patience}, "
            f"factor {d.scheduler_factor}, threshold {d.scheduler_threshold} rel, cooldown {d.scheduler_cooldown}, "
            f"min_lr {d.min_lr})"
        )
    clip, clip_known = _infer_clip(data)
    if clip is not None:
        assumptions.append(f"no config: clip threshold {num(clip)} inferred from the clipped steps' clip_factor")
    inferred = _settings_of(d, "inferred")
    return dataclasses.replace(inferred, lr=lr, scheduler=scheduler, grad_clip=clip, clip_known=clip_known), assumptions


def _infer_clip(data: RunData) -> tuple[float | None, bool]:
    """clip_factor = clip / (norm + 1e-6) on clipped steps, so clip = factor * (norm + 1e-6)."""
    if data.steps is None or not {"grad_norm", "clipped", "clip_factor"} <= set(data.steps.columns):
        return None, False
    s = data.steps
    mask = s["clipped"].astype(bool)
    if not mask.any():
        return None, False
    estimates = s.loc[mask, "clip_factor"].astype(float) * (s.loc[mask, "grad_norm"].astype(float) + 1e-6)
    est = measures.percentile(estimates.tolist(), 50)
    return (est, False) if math.isfinite(est) else (None, False)


__all__ = ["Settings", "resolve_settings"]

"""The settings a diagnosis needs (LR, scheduler, clip threshold), and where each came from.

A full config (a TrainConfig, or a dict of all its fields as nbtrain's runs store it) is
taken as it is. A partial dict (e.g. ``{"grad_clip": 1.0}`` from a Lightning trainer) gives
the fields it states; the rest is read from the log like a run without a config: the
initial LR from the first logged LR, the clip threshold from the clipped steps'
``clip_factor``, the scheduler from the logged LR (``schedule.infer_schedule``: a plateau
scheduler only when its cuts show it; never assumed). Every inferred value is stated in
the assumptions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .. import measures
from ..training.config import TrainConfig
from .formatting import lr_text, num
from .run_data import RunData
from .schedule import Schedule, describe_settings, infer_schedule

_DEFAULTS = TrainConfig()
RELEVANT = ("lr", "grad_clip", "scheduler", "scheduler_patience", "scheduler_factor", "scheduler_threshold")
# partial config field -> the plateau setting ``infer_schedule`` may take from it
STATED_PLATEAU = {"scheduler_patience": "patience", "scheduler_factor": "factor",
                  "scheduler_threshold": "threshold", "scheduler_cooldown": "cooldown"}


@dataclass
class Settings:
    """What the checks need from the config, and where each value came from."""

    lr: float | None
    scheduler: str | None  # "plateau", "cosine_warm_restarts", "none"; inferred: a schedule kind; None: unknown
    patience: int
    factor: float
    threshold: float
    cooldown: int
    min_lr: float
    grad_clip: float | None
    clip_known: bool  # False when grad_clip is a guess or unknown
    source: str  # "config", "history meta" or "inferred"
    semantics: str = "torch"  # plateau cuts: torch's rule or Keras's (cuts one evaluation earlier)
    lr_logged: str = "after"  # the LR logged per point: in force "after" its scheduler step, or "during" it
    schedule: dict | None = None  # the LR schedule: kind, source ("config" or "inferred"), description

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def scheduler_inferred(self) -> bool:
        return bool(self.schedule) and self.schedule.get("source") == "inferred"

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
        schedule={"kind": c.scheduler, "source": "config"},
    )


def resolve_settings(config: Any, data: RunData) -> tuple[Settings, list[str]]:
    """Settings from ``config`` (a TrainConfig or a dict of its fields), else the history's
    ``meta["config"]``, else inferred from the log. Returns them with the assumptions made."""
    assumptions: list[str] = []
    source = "config"
    if config is None and isinstance(data.meta.get("config"), dict) and data.meta["config"]:
        config, source = data.meta["config"], "history meta"
        assumptions.append("no config given: used the config stored in the history's meta")
    if isinstance(config, dict):
        try:
            cfg = TrainConfig.from_dict(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config dict is not a valid TrainConfig: {exc}") from exc
        if all(name in config for name in RELEVANT):
            return _settings_of(cfg, source), assumptions
        return _partial(config, cfg, source, data, assumptions), assumptions
    if isinstance(config, TrainConfig):
        return _settings_of(config, source), assumptions
    if config is not None:
        raise TypeError(f"config must be a TrainConfig, a dict of its fields or None, got {type(config).__name__}")
    return _inferred(data, {}, assumptions), assumptions


def _partial(config: dict, cfg: TrainConfig, source: str, data: RunData, assumptions: list[str]) -> Settings:
    """A partial config: its stated fields, the rest as without a config (see the module's docstring)."""
    if config.get("scheduler") == "plateau":
        for name in RELEVANT[3:]:
            if name not in config:
                assumptions.append(f"config has no {name!r}: assumed TrainConfig's default {getattr(_DEFAULTS, name)!r}")
    s = _inferred(data, config, assumptions)
    if "scheduler" in config:
        stated = _settings_of(cfg, source)
        s = dataclasses.replace(stated, lr=s.lr, grad_clip=s.grad_clip, clip_known=s.clip_known)
    return dataclasses.replace(s, source=source)


def _inferred(data: RunData, config: dict, assumptions: list[str]) -> Settings:
    """Each setting from ``config`` where it states it, else read from the log."""
    d = _DEFAULTS
    s = _settings_of(d, "inferred")
    s.lr = float(config["lr"]) if "lr" in config else _infer_lr(data, assumptions, bool(config))
    if "grad_clip" in config:
        s.grad_clip, s.clip_known = config["grad_clip"], True
    else:
        s.grad_clip, s.clip_known = _infer_clip(data)
        if s.grad_clip is not None:
            assumptions.append(f"{_prefix(config, 'grad_clip')}: clip threshold {num(s.grad_clip)} inferred from the "
                               "clipped steps' clip_factor")
        elif config:
            assumptions.append("config has no 'grad_clip': the clip threshold is unknown")
    if "scheduler" not in config:
        stated = {STATED_PLATEAU[k]: v for k, v in config.items() if k in STATED_PLATEAU}
        _apply_schedule(s, _read_schedule(data, stated), stated, assumptions, "lr" in config)
    return s


def _read_schedule(data: RunData, stated: dict) -> Schedule:
    """``infer_schedule``, guarded: a log it cannot read gets an unknown schedule and a note."""
    try:
        return infer_schedule(data, stated)
    except Exception as exc:  # noqa: BLE001 - a readable log never crashes the diagnosis
        note = f"infer_schedule failed on this log ({type(exc).__name__}: {exc}): the LR schedule is unknown"
        if note not in data.notes:
            data.notes.append(note)
        return Schedule("unknown", description=note)


def _prefix(config: dict, name: str) -> str:
    return f"config has no {name!r}" if config else "no config"


def _infer_lr(data: RunData, assumptions: list[str], partial: bool) -> float | None:
    sources = [("lr_start", "epoch", "epoch 0's lr_start"), ("lr", "step", "the first step's lr"),
               ("lr", "epoch", "epoch 0's lr (after its scheduler step)")]
    if data.unit != "epoch":  # evaluation points' lr_start is the first step's lr of their window
        sources = sources[1:]
    for name, level, what in sources:
        values = data.col(name, level)
        first = next((float(v) for v in values if math.isfinite(v)), None) if values is not None else None
        if first is not None and first > 0:
            if data.unit != "epoch":
                what = what.replace("epoch 0's", "the first evaluation's")
            prefix = "config has no 'lr'" if partial else "no config"
            assumptions.append(f"{prefix}: initial LR {lr_text(first)} taken from {what}")
            return first
    return None


def _apply_schedule(s: Settings, schedule: Schedule, stated: dict, assumptions: list[str], lr_stated: bool) -> None:
    """The scheduler settings read from the log (the plateau's when its cuts show one)."""
    s.schedule = {**schedule.to_dict(), "source": "inferred"}
    s.scheduler = None if schedule.kind == "unknown" else schedule.kind
    if schedule.kind != "unknown":
        assumptions.append(describe_settings(schedule))
    if not lr_stated and schedule.peak is not None and (schedule.warmup is not None or schedule.kind == "one_cycle"):
        s.lr = schedule.peak
        assumptions[:] = [a for a in assumptions if ": initial LR " not in a]
        assumptions.append(f"the peak LR {lr_text(s.lr)} (after the warmup) is taken as the run's LR")
    if schedule.plateau is not None:
        p = schedule.plateau
        s.patience, s.factor, s.threshold = p["patience"], p["factor"], p["threshold"]
        s.cooldown, s.min_lr, s.semantics, s.lr_logged = p["cooldown"], p["min_lr"], p["semantics"], p["lr_logged"]
    for key in ("patience", "factor", "threshold", "cooldown"):
        if key in stated and schedule.plateau is None:
            setattr(s, key, stated[key])


def _infer_clip(data: RunData) -> tuple[float | None, bool]:
    """clip_factor = clip / (norm + 1e-6) on clipped steps, so clip = factor * (norm + 1e-6)."""
    if data.steps is None or not {"grad_norm", "clipped", "clip_factor"} <= set(data.steps.columns):
        return None, False
    s = data.steps
    mask = (s["clipped"].eq(True).to_numpy() & data.logged("clipped", "step")
            & data.logged("clip_factor", "step") & data.logged("grad_norm", "step"))
    if not mask.any():
        return None, False
    estimates = s.loc[mask, "clip_factor"].astype(float) * (s.loc[mask, "grad_norm"].astype(float) + 1e-6)
    est = measures.percentile(estimates.tolist(), 50)
    return (est, False) if math.isfinite(est) else (None, False)


__all__ = ["RELEVANT", "Settings", "resolve_settings"]

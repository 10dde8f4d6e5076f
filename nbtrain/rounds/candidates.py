"""A candidate change for the next round, and what its paired runs measured.

Definitions
-----------
knob
    The setting a change turns: ``"lr"``, ``"schedule"`` (patience, or the scheduler with its
    cycle), ``"clip"``, ``"weight_decay"`` or ``"batch"``. A round takes at most one change per
    knob, so the changes it combines never set the same config field.
paired comparison
    The candidate and the unchanged config trained from the same seeds for the same epochs.
    Per seed: both runs' best validation loss and the relative difference
    ``(candidate - unchanged) / unchanged``. The candidate *wins* a seed when its best
    validation loss is lower; a run that diverged or failed never wins. The *effect* is the
    median of the per-seed relative differences (negative: lower loss).
improvement
    A change that wins on most seeds: more than half of them (2 of 3, 2 of 2), in a
    comparison over every seed asked for.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..diagnosis.formatting import sci, sig

KNOBS = ("lr", "schedule", "clip", "weight_decay", "batch")

VERIFIED = "verified"  # won on most seeds at full length
REJECTED = "rejected"  # measured and did not win on most seeds
UNTESTED = "untested"  # the budget did not reach it (or not every seed): never recommended
STATUSES = (VERIFIED, REJECTED, UNTESTED)


@dataclass(frozen=True)
class SeedResult:
    """One seed of a paired comparison."""

    seed: int
    baseline: float | None  # best validation loss of the unchanged config
    candidate: float | None  # best validation loss of the changed config
    status: str = "completed"  # the candidate run's status: completed, diverged or failed

    @property
    def relative(self) -> float | None:
        """``(candidate - baseline) / baseline``; None when either is missing or the baseline is 0."""
        if self.baseline is None or self.candidate is None or not self.baseline > 0:
            return None
        return (self.candidate - self.baseline) / self.baseline

    @property
    def win(self) -> bool:
        return (self.status == "completed" and self.candidate is not None and self.baseline is not None
                and self.candidate < self.baseline)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison over the seeds, at one run length (see the module's definitions)."""

    epochs: int
    seeds: tuple[SeedResult, ...]
    complete: bool = True  # every seed asked for has both runs

    @property
    def wins(self) -> int:
        return sum(s.win for s in self.seeds)

    @property
    def improvement(self) -> bool:
        return self.complete and self.wins > len(self.seeds) / 2

    @property
    def identical(self) -> bool:
        """Every seed gave exactly the unchanged config's number: a change that acts only later
        (a patience that has not cut yet) cannot be told apart in these epochs."""
        return self.complete and bool(self.seeds) and all(s.relative == 0.0 for s in self.seeds)

    @property
    def effect(self) -> float | None:
        """Median relative difference of the best validation loss (negative: lower)."""
        rel = [s.relative for s in self.seeds if s.relative is not None]
        return statistics.median(rel) if rel else None

    def describe(self) -> str:
        e = self.effect
        size = "n/a" if e is None else f"{e:+.0%}"
        return f"won {self.wins} of {len(self.seeds)} seeds over {epochs_text(self.epochs)}, median change {size}"

    def per_seed(self) -> str:
        """``seed 0: 0.4123 -> 0.0512`` for each seed."""
        parts = []
        for s in self.seeds:
            mark = "" if s.status == "completed" else f" ({s.status})"
            parts.append(f"seed {s.seed}: {sig(s.baseline)} → {sig(s.candidate)}{mark}")
        return "; ".join(parts)


@dataclass
class Candidate:
    """One change to try: a one-setting config diff, why (the finding and its source), what it did."""

    name: str  # e.g. "lr 2e-5 → 2.3e-4 (LR range test)"
    changes: dict  # TrainConfig field -> new value (one setting; a scheduler with its cycle is one)
    knob: str  # one of KNOBS
    findings: tuple[str, ...]  # the finding codes that motivate it, the main one first
    rationale: str  # why the change should help, citing the finding's numbers
    source: str  # where the rule comes from (PyTorch docs, the Tuning Playbook, a probe)
    screen: Comparison | None = None  # the shorter screening runs
    full: Comparison | None = None  # the full-length runs
    status: str = UNTESTED
    note: str = ""  # what happened to it, in a sentence (why untested, rejected, dropped from the round)
    evidence: dict = field(default_factory=dict)  # numbers the rule read (JSON-safe)

    def __post_init__(self) -> None:
        if self.knob not in KNOBS:
            raise ValueError(f"knob must be one of {KNOBS}, got {self.knob!r}")
        if not self.changes:
            raise ValueError(f"candidate {self.name!r} changes nothing")

    @property
    def finding(self) -> str:
        """The main finding code behind the change."""
        return self.findings[0] if self.findings else ""

    @property
    def effect(self) -> float | None:
        """The measured effect: at full length when measured there, else the screen's."""
        for c in (self.full, self.screen):
            if c is not None and c.effect is not None:
                return c.effect
        return None

    def diff_text(self, before: Any) -> str:
        """``lr: 2e-5 → 2.3e-4`` for each field changed (``before``: the unchanged TrainConfig)."""
        return ", ".join(f"`{k}`: {value_text(k, getattr(before, k))} → {value_text(k, v)}"
                         for k, v in self.changes.items())


def epochs_text(n: int) -> str:
    """``"1 epoch"``, ``"3 epochs"``."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def value_text(field_name: str, value: Any) -> str:
    """A config value as people write it (LRs and decay in scientific notation)."""
    if isinstance(value, float) and value == 0:
        return "0"
    if isinstance(value, float) and field_name in ("lr", "weight_decay", "min_lr"):
        return sci(value)
    if isinstance(value, float) and math.isfinite(value):
        return sig(value, 3)
    return str(value)


__all__ = ["Candidate", "Comparison", "KNOBS", "REJECTED", "STATUSES", "SeedResult", "UNTESTED", "VERIFIED",
           "epochs_text", "value_text"]

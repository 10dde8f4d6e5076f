"""What every check reads (the log and its settings) and where it writes (findings, skips)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..findings import Finding
from ..run_data import RunData
from ..settings import Settings
from ..units import Units

PLAYBOOK = "Google's Deep Learning Tuning Playbook"


@dataclass
class Context:
    """One log, its settings, and the findings and skipped checks gathered so far."""

    data: RunData
    s: Settings
    config: dict | None = None  # the diagnosed run's config fields, where known (batch size, ...)
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.val: np.ndarray | None = self.data.col("val_loss")
        self.train: np.ndarray | None = self.data.col("train_loss")
        self.observed_lr: np.ndarray | None = self.data.col("lr")
        self.epochs: list = self.data.epoch_numbers  # the evaluation points' ids (``RunData.ids``)
        self.u: Units = self.data.units()

    @property
    def reference(self) -> bool:
        """True for a run of nbtrain's reference experiment (its texts may name its specifics)."""
        return self.data.meta.get("experiment") == "reference"

    def skip(self, message: str) -> None:
        """Note a check that could not run, once."""
        if message not in self.not_checked:
            self.not_checked.append(message)

    def add(self, finding: Finding | None) -> None:
        if finding is not None:
            self.findings.append(finding)

    def cut_epochs(self) -> list | None:
        """Points whose scheduler step lowered the LR (``RunData.cut_epochs``); when the logged
        LR is the one in force during each point (``Settings.lr_logged``), the point before."""
        cuts = self.data.cut_epochs(self.s.lr)
        if cuts is None or self.s.lr_logged != "during":
            return cuts
        return [self.epochs[self.epochs.index(c) - 1] for c in cuts if self.epochs.index(c) > 0]


__all__ = ["Context", "PLAYBOOK"]

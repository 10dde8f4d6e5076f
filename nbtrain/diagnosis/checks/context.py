"""What every check reads (the log and its settings) and where it writes (findings, skips)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..findings import Finding
from ..run_data import RunData
from ..settings import Settings

PLAYBOOK = "Google's Deep Learning Tuning Playbook"


@dataclass
class Context:
    """One log, its settings, and the findings and skipped checks gathered so far."""

    data: RunData
    s: Settings
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.val: np.ndarray | None = self.data.col("val_loss")
        self.train: np.ndarray | None = self.data.col("train_loss")
        self.observed_lr: np.ndarray | None = self.data.col("lr")
        self.epochs: list[int] = self.data.epoch_numbers

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

    def cut_epochs(self) -> list[int] | None:
        """Epochs whose scheduler step lowered the logged LR (``RunData.cut_epochs``)."""
        return self.data.cut_epochs(self.s.lr)


__all__ = ["Context", "PLAYBOOK"]

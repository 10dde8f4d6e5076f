"""What one round of the demo measured: the numbers its table and verdict are written from.

Every number is ``summarize``'s (``nbtrain.diagnosis.summary``, defined in ``nbtrain.measures``)
or the run's own epoch rows: nothing here defines a measurement. The one derived word is
``still_improving``: a run of two or more epochs whose best validation loss came at its last
epoch (its validation loss had not bottomed out when training stopped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..diagnosis.run_data import as_run_data
from ..diagnosis.summary import summarize
from ..training.config import TrainConfig


@dataclass(frozen=True)
class Outcome:
    """One round: its name, its config (None when the run folder has none) and its numbers."""

    name: str
    config: TrainConfig | None
    summary: dict  # ``summarize(history, config)``
    epoch_numbers: tuple  # the epochs it logged, 0-based
    clipped_last: float | None  # the last epoch's share of steps clipped (its epoch row)
    status: str = "completed"

    @property
    def best_val(self) -> float | None:
        return self.summary.get("best_val_loss")

    @property
    def best_epoch(self) -> Any:
        return self.summary.get("best_epoch")

    @property
    def epochs_text(self) -> str:
        """``"0-6"``: the range of epochs the run logged (``"0"`` for one)."""
        if not self.epoch_numbers:
            return "none"
        first, last = self.epoch_numbers[0], self.epoch_numbers[-1]
        return f"{first}" if first == last else f"{first}-{last}"

    @property
    def still_improving(self) -> bool:
        """Two or more epochs, and the best validation loss at the last one."""
        return (len(self.epoch_numbers) >= 2 and self.best_epoch is not None
                and self.best_epoch == self.epoch_numbers[-1])

    def setting(self, name: str) -> Any:
        """A TrainConfig field of this round (None when the round has no config)."""
        return None if self.config is None else getattr(self.config, name, None)


def outcome(name: str, history: Any, config: TrainConfig | None = None, status: str = "completed") -> Outcome:
    """The ``Outcome`` of a run: ``history`` is anything ``diagnose`` reads (a History, a
    DataFrame of epoch rows, ...); ``config`` its TrainConfig (None: unknown; the verdict then names no settings)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    data = as_run_data(history)
    clipped = data.col("clip_fraction")
    last = None if clipped is None or not len(clipped) or not math.isfinite(clipped[-1]) else float(clipped[-1])
    return Outcome(name, config, summarize(data, config), tuple(data.epoch_numbers), last, status)


__all__ = ["Outcome", "outcome"]

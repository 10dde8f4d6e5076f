"""Extension points: a callback base class whose hooks do nothing by default.

The trainer calls each hook in one place. A hook gets the live ``Trainer`` (for its
``history``, ``config``, ``model`` and ``stop()``) and, for step and epoch hooks, the
row that was just recorded (a plain dict, see ``nbtrain.history``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


class Callback:
    """Override any of these; all default to doing nothing."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        pass

    def on_step_end(self, trainer: "Trainer", row: dict) -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None:
        pass

    def on_lr_reduced(self, trainer: "Trainer", old_lr: float, new_lr: float, val_loss: float) -> None:
        pass

    def on_train_end(self, trainer: "Trainer") -> None:
        pass


class StopAfterSteps(Callback):
    """Ask the trainer to stop once ``n`` optimizer steps have run (handy in tests and demos)."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.n = n

    def on_step_end(self, trainer: "Trainer", row: dict) -> None:
        if row["step"] + 1 >= self.n:
            trainer.stop()

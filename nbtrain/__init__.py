"""nbtrain: reproduce, diagnose and fix training instability, notebook first."""

from __future__ import annotations

from . import presets
from .callbacks import Callback, StopAfterSteps
from .config import TrainConfig
from .history import History
from .trainer import Run, Trainer, load_checkpoint, train

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "History",
    "Run",
    "StopAfterSteps",
    "TrainConfig",
    "Trainer",
    "__version__",
    "load_checkpoint",
    "presets",
    "train",
]

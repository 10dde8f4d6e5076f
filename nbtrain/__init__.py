"""nbtrain: reproduce, diagnose and fix training instability, notebook first."""

from __future__ import annotations

from . import plots, presets
from .callbacks import Callback, StopAfterSteps
from .compare import LoadedRun, RunFolderError, compare_runs, load_run, summarize
from .config import TrainConfig
from .diagnostics import Diagnosis, Finding, diagnose
from .expectations import Expectations, Verdict, check_expectations
from .history import History
from .plateau import PlateauState, plateau_state, simulate_plateau
from .probes import (
    LayerStats,
    LRRangeResult,
    NoiseScaleResult,
    SharpnessResult,
    gradient_noise_scale,
    layer_stats_dataframe,
    lr_range_test,
    probe_findings,
    sharpness,
    stability_threshold,
)
from .sweep import load_sweep, sweep
from .sweep_plots import sweep_curves, sweep_heatmap
from .tensorboard import TensorBoardCallback
from .trainer import Run, Trainer, load_checkpoint, train
from .widgets import Dashboard

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "Dashboard",
    "Diagnosis",
    "Expectations",
    "Finding",
    "LRRangeResult",
    "LayerStats",
    "NoiseScaleResult",
    "SharpnessResult",
    "gradient_noise_scale",
    "layer_stats_dataframe",
    "lr_range_test",
    "probe_findings",
    "sharpness",
    "stability_threshold",
    "LoadedRun",
    "PlateauState",
    "RunFolderError",
    "Verdict",
    "check_expectations",
    "compare_runs",
    "diagnose",
    "load_run",
    "plateau_state",
    "plots",
    "simulate_plateau",
    "summarize",
    "History",
    "Run",
    "TensorBoardCallback",
    "load_sweep",
    "sweep",
    "sweep_curves",
    "sweep_heatmap",
    "StopAfterSteps",
    "TrainConfig",
    "Trainer",
    "__version__",
    "load_checkpoint",
    "presets",
    "train",
]

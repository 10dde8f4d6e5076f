"""nbtrain: reproduce, diagnose and fix training instability, notebook first.

The package follows the flow of a run (README, "Architecture"):

- ``nbtrain.training``: config, presets, the instrumented trainer, callbacks, history, run folders;
- ``nbtrain.reference``: the reference experiment's data and model;
- ``nbtrain.measures``: the one definition of every quantity reported about a run;
- ``nbtrain.diagnosis``: findings, the plateau simulator, expectations, symptoms, summaries;
- ``nbtrain.probes``: LR range test, gradient noise scale, sharpness, per-layer statistics;
- ``nbtrain.views``: static plots, run comparison, live plots and the dashboard;
- ``nbtrain.sweeps``: grids of runs on a process pool or Ray, and their plots.

Every public name below is importable from ``nbtrain`` itself. Names are loaded on first
use, so ``import nbtrain`` stays light: matplotlib, ipywidgets, Ray and TensorBoard load
only when something that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute); attribute None: the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # training
    "TrainConfig": ("nbtrain.training.config", "TrainConfig"),
    "presets": ("nbtrain.training.presets", None),
    "History": ("nbtrain.training.history", "History"),
    "Callback": ("nbtrain.training.callbacks", "Callback"),
    "StopAfterSteps": ("nbtrain.training.callbacks", "StopAfterSteps"),
    "Run": ("nbtrain.training.trainer", "Run"),
    "Trainer": ("nbtrain.training.trainer", "Trainer"),
    "train": ("nbtrain.training.trainer", "train"),
    "load_checkpoint": ("nbtrain.training.runfolder", "load_checkpoint"),
    "LoadedRun": ("nbtrain.training.runfolder", "LoadedRun"),
    "RunFolderError": ("nbtrain.training.runfolder", "RunFolderError"),
    "load_run": ("nbtrain.training.runfolder", "load_run"),
    "Recorder": ("nbtrain.recording.recorder", "Recorder"),
    "TensorBoardCallback": ("nbtrain.training.tensorboard", "TensorBoardCallback"),
    # other tools' logs
    "read_log": ("nbtrain.logs", "read_log"),
    "LogFormatError": ("nbtrain.logs", "LogFormatError"),
    # the reference experiment
    "make_reference_data": ("nbtrain.reference.data", "make_reference_data"),
    "ReferenceModel": ("nbtrain.reference.models", "ReferenceModel"),
    # diagnosis
    "Diagnosis": ("nbtrain.diagnosis.findings", "Diagnosis"),
    "Finding": ("nbtrain.diagnosis.findings", "Finding"),
    "diagnose": ("nbtrain.diagnosis.diagnostics", "diagnose"),
    "PlateauState": ("nbtrain.diagnosis.plateau", "PlateauState"),
    "plateau_state": ("nbtrain.diagnosis.plateau", "plateau_state"),
    "simulate_plateau": ("nbtrain.diagnosis.plateau", "simulate_plateau"),
    "Expectations": ("nbtrain.diagnosis.expectations", "Expectations"),
    "Verdict": ("nbtrain.diagnosis.expectations", "Verdict"),
    "check_expectations": ("nbtrain.diagnosis.expectations", "check_expectations"),
    "round1_symptoms": ("nbtrain.diagnosis.symptoms", "round1_symptoms"),
    "summarize": ("nbtrain.diagnosis.summary", "summarize"),
    # probes
    "LRCheck": ("nbtrain.probes.lr_check", "LRCheck"),
    "LRRangeResult": ("nbtrain.probes.lr_range", "LRRangeResult"),
    "LayerStats": ("nbtrain.probes.layers", "LayerStats"),
    "NoiseScaleResult": ("nbtrain.probes.noise_scale", "NoiseScaleResult"),
    "SharpnessResult": ("nbtrain.probes.sharpness", "SharpnessResult"),
    "estimate_sharpness": ("nbtrain.probes.sharpness", "estimate_sharpness"),
    "gradient_noise_scale": ("nbtrain.probes.noise_scale", "gradient_noise_scale"),
    "layer_stats_dataframe": ("nbtrain.probes.layers", "layer_stats_dataframe"),
    "check_lr_suggestion": ("nbtrain.probes.lr_check", "check_lr_suggestion"),
    "lr_range_test": ("nbtrain.probes.lr_range", "lr_range_test"),
    "probe_findings": ("nbtrain.probes.findings", "probe_findings"),
    "stability_threshold": ("nbtrain.probes.sharpness", "stability_threshold"),
    # views
    "plots": ("nbtrain.views.plots", None),
    "compare_runs": ("nbtrain.views.compare", "compare_runs"),
    "format_table": ("nbtrain.views.tables", "format_table"),
    "Dashboard": ("nbtrain.views.dashboard", "Dashboard"),
    # sweeps
    "sweep": ("nbtrain.sweeps.runner", "sweep"),
    "load_sweep": ("nbtrain.sweeps.runner", "load_sweep"),
    "train_many": ("nbtrain.sweeps.many", "train_many"),
    "sweep_curves": ("nbtrain.sweeps.plots", "sweep_curves"),
    "sweep_heatmap": ("nbtrain.sweeps.plots", "sweep_heatmap"),
    # the next round
    "next_round": ("nbtrain.rounds.api", "next_round"),
    "Round": ("nbtrain.rounds.report", "Round"),
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'nbtrain' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

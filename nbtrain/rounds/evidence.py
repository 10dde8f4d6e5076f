"""What the rulebook reads about the input run: its diagnosis and the probes' measurements.

``gather`` diagnoses the run (``nbtrain.diagnose``) and runs the probes its findings call for,
on the run's own model and training data:

- the LR range test (``nbtrain.lr_range_test``, its defaults, at the run's batch size and
  seed, from a freshly initialised model: the sweep measures the start of training) when a
  finding points at the learning rate (``RANGE_TEST_FOR``);
- the gradient noise scale (``nbtrain.gradient_noise_scale``, at the run's batch size, on
  the trained model when the run has one: its checkpoint or ``Run.model``; else on a fresh
  model, and the notes say so) when the validation loss stalled or rose (``NOISE_SCALE_FOR``).

Their findings (``nbtrain.probe_findings``) join the diagnosis's. Every probe restores what
it changes, so nothing here alters a model that is handed back to the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..diagnosis.diagnostics import diagnose
from ..diagnosis.findings import (
    GRADIENT_GROWTH,
    HEAVY_CLIPPING,
    NON_FINITE,
    OVERFITTING,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    Diagnosis,
    Finding,
)
from ..training.config import TrainConfig
from ..training.history import History

RANGE_TEST_FOR = (GRADIENT_GROWTH, HEAVY_CLIPPING, OVERFITTING, VAL_FLUCTUATING, TRAIN_LOSS_PLATEAU, NON_FINITE)
NOISE_SCALE_FOR = (OVERFITTING, VAL_FLUCTUATING)


@dataclass
class Evidence:
    """The input run, its diagnosis and the probe results the rulebook reads."""

    config: TrainConfig
    history: History
    diagnosis: Diagnosis
    range_test: Any = None  # nbtrain.LRRangeResult, or None when not run
    noise_scale: Any = None  # nbtrain.NoiseScaleResult, or None when not run
    probe_findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what each probe ran on and what it cost
    seconds: float = 0.0  # wall time of the diagnosis and the probes

    @property
    def findings(self) -> list[Finding]:
        return list(self.diagnosis.findings) + list(self.probe_findings)

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def get(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)


def reference_model(seed: int):
    """A fresh reference model, initialised as the trainer does for ``seed``."""
    import torch

    from ..reference.models import ReferenceModel

    torch.manual_seed(seed)
    return ReferenceModel()


def _trained_model(make_model: Callable[[int], Any], config: TrainConfig, trained: Any, checkpoint: Any):
    """``(model, where)``: the run's trained model if there is one, else a fresh one."""
    if trained is not None:
        return trained, "the run's trained model"
    if checkpoint is not None:
        from ..training.runfolder import load_checkpoint

        try:
            state = load_checkpoint(checkpoint)
            model = make_model(config.seed)
            model.load_state_dict(state["model"])
            done = state.get("epoch")
            when = f" (after epoch {done - 1}, its last)" if isinstance(done, int) and done > 0 else ""
            return model, f"the trained model of {checkpoint}{when}"
        except (ValueError, KeyError, RuntimeError, FileNotFoundError) as exc:
            return make_model(config.seed), f"a fresh model (the checkpoint could not be used: {exc})"
    return make_model(config.seed), "a fresh model (the run left no trained model)"


def gather(config: TrainConfig, history: History, make_model: Callable[[int], Any], train_data: Any, *,
           trained: Any = None, checkpoint: Any = None) -> Evidence:
    """Diagnose the run and run the probes its findings call for (see the module docstring).

    ``make_model(seed)``: a fresh model as the run started; ``train_data``: the run's training
    split; ``trained``: the trained model, or ``checkpoint``: a checkpoint or run folder to
    load it from (either may be None).
    """
    t0 = time.perf_counter()
    ev = Evidence(config, history, diagnose(history, config))
    codes = set(ev.diagnosis.codes)
    if codes & set(RANGE_TEST_FOR):
        _range_test(ev, make_model, train_data)
    if codes & set(NOISE_SCALE_FOR):
        model, where = _trained_model(make_model, config, trained, checkpoint)
        _noise_scale(ev, model, where, train_data)
    ev.seconds = time.perf_counter() - t0
    return ev


def _range_test(ev: Evidence, make_model, train_data) -> None:
    from ..probes.findings import range_test_findings
    from ..probes.lr_range import lr_range_test

    t = time.perf_counter()
    result = lr_range_test(make_model(ev.config.seed), train_data, batch_size=ev.config.effective_batch_size,
                           seed=ev.config.seed)
    ev.range_test = result
    ev.probe_findings += range_test_findings(result, ev.config.lr)
    ev.notes.append(f"LR range test on a fresh model at batch {ev.config.effective_batch_size}: {result} "
                    f"({time.perf_counter() - t:.1f} s)")


def _noise_scale(ev: Evidence, model, where: str, train_data) -> None:
    from ..probes.findings import noise_scale_findings
    from ..probes.noise_scale import gradient_noise_scale

    t = time.perf_counter()
    batch = ev.config.effective_batch_size
    try:
        result = gradient_noise_scale(model, train_data, small_batch=batch, big_batch=max(256, 4 * batch))
    except ValueError as exc:  # too few examples for the batches it needs
        ev.notes.append(f"gradient noise scale not measured: {exc}")
        return
    ev.noise_scale = result
    ev.probe_findings += noise_scale_findings(result, batch)
    ev.notes.append(f"gradient noise scale on {where}: {result.describe(batch)} ({time.perf_counter() - t:.1f} s)")


__all__ = ["Evidence", "NOISE_SCALE_FOR", "RANGE_TEST_FOR", "gather", "reference_model"]

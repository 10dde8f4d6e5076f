"""``nbtrain.next_round``: the next round of a run, proposed from its diagnosis, verified, written up."""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..diagnosis.run_data import as_run_data
from ..sweeps.backends import BACKENDS, import_ray
from ..sweeps.plan import check_callable, check_seeds
from ..training.config import TrainConfig
from ..training.history import History
from ..training.records import Run
from ..training.runfolder import CHECKPOINT_FILE, LoadedRun, load_run
from . import rulebook
from .budget import Budget, input_epoch_seconds
from .evidence import Evidence, gather, reference_model
from .expectations import Pair, derive
from .monitoring import monitoring_points
from .report import Round
from .trials import Runner, SplitData
from .verify import Verification, verify


def round_number(config: TrainConfig) -> int:
    """The number of the round that follows ``config``: one more than ``roundN`` in its name, else 2."""
    m = re.fullmatch(r"round[ _-]?(\d+)", config.name.strip().lower())
    return int(m.group(1)) + 1 if m else 2


def _check_arguments(seeds, budget_s, backend, out, max_workers, sink) -> list[int]:
    try:
        seeds = check_seeds(seeds)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not math.isfinite(budget_s) \
            or budget_s <= 0:
        raise ValueError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out must be a folder path or None, got {out!r}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ValueError(f"max_workers must be a positive int or None, got {max_workers!r}")
    if sink is not None and not callable(sink):
        raise ValueError(f"sink must be a callable taking a line of text, or None, got {sink!r}")
    if backend == "ray":
        import_ray()
    return seeds


def _read_input(run: Any, config: TrainConfig | None) -> tuple[str, TrainConfig, History, Any, Any]:
    """``(source, config, history, trained model or None, checkpoint path or None)`` of the input run."""
    if config is not None and not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig or None, got {config!r}")
    trained = checkpoint = None
    if isinstance(run, (str, os.PathLike)):
        run = load_run(run)  # RunFolderError (a ValueError) names the folder and what is missing
    if isinstance(run, LoadedRun):
        source, history, config = f"the run folder `{run.path}`", run.history, config or run.config
        if (run.path / CHECKPOINT_FILE).is_file():
            checkpoint = run.path / CHECKPOINT_FILE
    elif isinstance(run, History):
        source, history = "the given history", run
    elif isinstance(run, Run):
        source, history, config, trained = f"the run `{run.config.label}`", run.history, config or run.config, run.model
    else:
        raise ValueError(f"run must be a Run, a run folder or a History (with config=), got {type(run).__name__}")
    if config is None:
        raise ValueError(f"config: {source} has no config (no config.json): pass config=TrainConfig(...)")
    if not history.epochs:
        raise ValueError(f"run: {source} has no completed epoch to diagnose")
    return source, config, history, trained, checkpoint


def _experiment(history: History, config: TrainConfig, model_factory, train_data, val_data, backend: str):
    """``(model_fn, data_fn, make_model, train_split)``: the sweep's functions and what the probes use."""
    if model_factory is None:
        if train_data is not None or val_data is not None:
            raise ValueError("train_data/val_data were given without model_factory: give all three for your own "
                             "model, or none for the reference experiment")
        if history.meta.get("experiment") != "reference":
            raise ValueError("run: it was not trained on nbtrain's reference experiment (its history's meta has no "
                             "experiment='reference'); for your own model pass model_factory=, train_data= and "
                             "val_data=")
        from ..reference.data import make_reference_data

        data = make_reference_data(config.resolved_data_seed, normalize=config.normalize)
        return None, None, reference_model, data.train
    if train_data is None or val_data is None:
        raise ValueError("model_factory needs train_data= and val_data= too (the data the run trained on)")
    try:
        check_callable("model_factory", model_factory, backend)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    return model_factory, SplitData(train_data, val_data), model_factory, train_data


def _runs(runner: Runner, arm, seeds, upto: int | None = None) -> dict:
    out = {}
    for s in seeds:
        h = runner.history(arm, s)
        if h is not None:
            data = as_run_data(h)
            out[s] = data.upto(upto - 1) if upto is not None else data
    return out


def _checked(v: Verification, runner: Runner, ev: Evidence, proposed: TrainConfig, epochs: int):
    """``(expectations, monitoring points, notes)`` of the round's config."""
    if not v.chosen:
        return [], [], []
    final = _runs(runner, v.final_full, runner.seeds)
    if v.screen_epochs >= epochs:
        return [], monitoring_points(final, proposed), [
            "A one-epoch run leaves no epoch the screen did not see: no expectation is written."]
    screen = Pair(_runs(runner, v.final_screen, runner.seeds), _runs(runner, v.baseline, runner.seeds,
                                                                   v.screen_epochs), proposed, v.screen_epochs)
    predictions = derive(screen, epochs, ev.codes, v.changes)
    final_pair = Pair(final, _runs(runner, v.baseline, runner.seeds), proposed, epochs)
    return [p.check(final_pair) for p in predictions], monitoring_points(final, proposed), []


def _verified_round(number: int, ev: Evidence, cands: list, runner: Runner, source: str) -> Round:
    """Verify the candidates on ``runner`` and assemble the Round (its runs must still be on disk)."""
    config, budget = ev.config, runner.budget
    v = verify(cands, runner, config.epochs)
    proposed = config.replace(**v.changes, name=f"round{number}")
    expectations, monitoring, notes = _checked(v, runner, ev, proposed, config.epochs)
    return Round(number, proposed, config, cands, expectations, chosen=list(v.chosen), findings=ev.findings,
                 unaddressed=rulebook.unaddressed(ev, cands), final=v.final, monitoring=monitoring,
                 seeds=tuple(runner.seeds), screen_epochs=v.screen_epochs, budget_s=budget.budget_s,
                 time_used_s=budget.elapsed, runs_trained=runner.trained, notes=v.notes + notes,
                 probe_notes=ev.notes, source=source)


def next_round(run: Any, seeds=(0, 1, 2), budget_s: float = 600, backend: str = "local", out: Any = None, *,
               config: TrainConfig | None = None, model_factory: Callable[[int], Any] | None = None,
               train_data: Any = None, val_data: Any = None, max_workers: int | None = None,
               sink: Callable[[str], None] | None = print) -> Round:
    """Propose the next round of ``run``, verify every change by paired runs, and write it up.

    ``run``: a ``Run``, a run folder, or a ``History`` with ``config=`` (``config`` also
    overrides a run's own). The run is diagnosed (``nbtrain.diagnose``) and probed (LR range
    test, gradient noise scale: ``nbtrain.rounds.evidence``); the rulebook
    (``nbtrain.rounds.rulebook``) turns the findings into candidate changes, one setting each;
    every candidate is trained against the unchanged config from the same ``seeds`` on the
    sweep ``backend`` (``"local"``: ``max_workers`` processes, default one per core; ``"ray"``),
    screened short, then at full length (``nbtrain.rounds.verify``). A change counts only
    when it beats the unchanged config on most seeds; the round combines the verified ones
    (one per setting) and verifies the combination, or falls back to the best single change.
    ``budget_s`` bounds the time (probes and runs): a run starts only when the budget can
    afford it, and what it cannot reach is reported "untested", never recommended.

    The reference experiment needs nothing more. For your own model pass ``model_factory``
    (``seed -> nn.Module``, a fresh model) and the run's ``train_data`` and ``val_data``: the
    sweep layer's convention, so for the local backend ``model_factory`` must be a top-level
    function of an importable module (not a lambda or a notebook's function: use Ray there)
    and the data picklable (tensors, a TensorDataset). Runs use the trainer's loss (MSE).

    ``out``: a folder for ``round-N.md`` (N: the number after ``roundN`` in the config's name,
    else 2), ``round-N.json``, ``round-N-config.json`` and the runs (``round-N-runs/``; calling
    again with the same ``out`` reads finished runs back). None: the runs go to a temporary
    folder, deleted at the end. ``sink``: progress lines (None: silent).

    Returns a :class:`~nbtrain.rounds.report.Round`: ``.config`` (the proposed TrainConfig),
    ``.candidates`` (every change with its measured effect, per seed), ``.expectations``
    (each ``.status`` "held" or "not held", with its evidence), ``.to_markdown()``.
    """
    seeds = _check_arguments(seeds, budget_s, backend, out, max_workers, sink)
    say = sink if sink is not None else (lambda _m: None)
    source, config, history, trained, checkpoint = _read_input(run, config)
    budget = Budget(budget_s, max_workers or os.cpu_count() or 1, input_epoch_seconds(history.epochs))
    model_fn, data_fn, make_model, train_split = _experiment(history, config, model_factory, train_data, val_data,
                                                             backend)
    number = round_number(config)
    say(f"round {number}: diagnosing {source} and running the probes its findings call for")
    ev = gather(config, history, make_model, train_split, trained=trained, checkpoint=checkpoint)
    cands = rulebook.candidates(ev)
    say(f"round {number}: {len(cands)} candidate change(s): {'; '.join(c.name for c in cands) or 'none'}")
    temp = None if out is not None else tempfile.mkdtemp(prefix="nbtrain-round-")
    folder = Path(temp) if temp else Path(out) / f"round-{number}-runs"
    try:
        rnd = _verified_round(number, ev, cands, Runner(config, seeds, folder, backend, budget, model_fn, data_fn,
                                                        say), source)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if out is not None:
        rnd.write(out)
    held = sum(e.held for e in rnd.expectations)
    say(f"round {number}: {rnd.changes or 'no change'}; expectations held {held} of {len(rnd.expectations)}; "
        f"{rnd.time_used_s:.0f} s of {budget_s:.0f} s" + (f"; written to {rnd.path}" if rnd.path else ""))
    return rnd


__all__ = ["next_round", "round_number"]

"""A live training dashboard for Jupyter: sliders for lr, clip and patience, Train/Stop.

``Dashboard`` (or ``dashboard()``) builds the controls, trains in a background thread
so the notebook stays responsive, and redraws three plots while the run goes on:
losses, the pre-clip gradient norm per step with the clip threshold, and the LR with
the scheduler's cuts. Earlier runs of the session stay on the plots, drawn faintly, until
"Clear history". When a run ends, the diagnosis and the expectation verdicts appear
below the plots, and the trainer's log lines (``Learning rate reduced: ...``, one line per
epoch) go to a log box.

Threads and processes: the training thread only appends rows to a list under a lock
(the ``_Recorder`` callback) and wakes the refresher. A second thread, the refresher,
sends the new rows to a helper process (``nbtrain.liveplot.PlotProcess``) that draws the
plots with matplotlib's Agg canvas into a PNG, shown by an ``ipywidgets.Image``: at most
every ``refresh_interval`` seconds and at the end of every epoch. Drawing in the helper
keeps matplotlib's Python off the training process's GIL. Where the helper cannot run,
the refresher draws in-process, and then only as often as keeps drawing under
``DRAW_SHARE`` (5%) of the time. Widget values are only assigned, never read, from these
threads. Stopping is ``Trainer.stop()``: the run ends after the current optimizer step
and keeps its partial history.
"""

from __future__ import annotations

import copy
import html
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import ipywidgets as W
import torch
from torch import nn

from ..training import presets
from ..training.callbacks import Callback
from ..training.config import TrainConfig
from .liveplot import PlotProcess, PlotProcessError, PlotProcessNotReady, render_png
from ..training.trainer import Run, Trainer

# Fields the controls set; everything else comes from the last preset loaded.
CONTROLLED_FIELDS = (
    "lr",
    "grad_clip",
    "scheduler_patience",
    "scheduler",
    "batch_size",
    "grad_accum_steps",
    "epochs",
    "seed",
)
LR_RANGE = (1e-6, 1e-3)  # the LR slider's ends
DRAW_SHARE = 0.05  # between epoch ends, drawing stays below about this share of the wall time
_SCHEDULER_CHOICES = (
    ("ReduceLROnPlateau", "plateau"),
    ("cosine warm restarts", "cosine_warm_restarts"),
    ("none (constant LR)", "none"),
)


@dataclass
class _RunRecord:
    """One run of the session as the plots see it: rows so far, and the Run once done."""

    index: int  # 1-based run number in this session
    config: TrainConfig
    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    steps_per_epoch: int = 0
    started: float = 0.0  # perf_counter() when Train was pressed
    fit_started: float = 0.0  # perf_counter() when the first epoch began (data and model ready)
    first_drawn: float | None = None  # perf_counter() of the first plot showing one of its steps
    ended: float = 0.0  # perf_counter() when the run ended (before the diagnosis)
    redraws: int = 0  # redraws while it was the current run
    run: Run | None = None
    error: str = ""

    @property
    def label(self) -> str:
        c = self.config
        clip = "off" if c.grad_clip is None else f"{c.grad_clip:g}"
        extra = "" if c.scheduler == "plateau" else f" {c.scheduler}"
        return f"#{self.index} lr {c.lr:.0e} clip {clip} pat {c.scheduler_patience}{extra}"


class _Recorder(Callback):
    """Copies the trainer's rows into the dashboard (thread-safe) and wakes the refresher."""

    def __init__(self, dashboard: "Dashboard", record: _RunRecord) -> None:
        self.dashboard = dashboard
        self.record = record

    def on_train_begin(self, trainer: Trainer) -> None:
        with self.dashboard._lock:
            self.record.steps_per_epoch = trainer.steps_per_epoch
            self.record.fit_started = time.perf_counter()
        if self.dashboard._stop_event.is_set():
            trainer.stop()

    def on_step_end(self, trainer: Trainer, row: dict) -> None:
        with self.dashboard._lock:
            self.record.steps.append(row)
        if self.dashboard._stop_event.is_set():
            trainer.stop()
        self.dashboard._wake(epoch_end=False)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        with self.dashboard._lock:
            self.record.epochs.append(row)
        self.dashboard._wake(epoch_end=True)


class Dashboard:
    """Interactive training: controls, live plots, diagnosis and log for one session.

    With no arguments it trains the reference experiment. Pass ``model`` (an
    ``nn.Module``, copied afresh for every run so each run starts from the same weights,
    or a zero-argument function returning a new module, called after seeding so the
    seed control also sets the initialisation) with ``train_data`` and ``val_data``
    (anything ``nbtrain.train`` accepts) to tune your own model. ``callbacks`` are
    passed to every run. ``config`` is the starting point (default: ``presets.ROUND1``).

    The plots are drawn by a helper process (``nbtrain.liveplot``; ``plot_process=False``
    draws in this process instead). It needs a core of its own: with ``threads="auto"``
    (the default), a run whose torch threads would take every core trains on one fewer,
    says so in the log, and puts the setting back when it ends. Measured on 2 cores
    (``benchmarks/bench_widgets.py``): 2 torch threads plus the helper trained about 2x
    slower than headless; 1 thread plus the helper matched a 1-thread headless run, and
    was about 19% slower than a 2-thread one.
    ``threads=N`` trains on N threads; ``threads=None`` leaves torch's setting alone.

    Show it with ``display(board)`` (or as a cell's last value). The same actions are
    methods, for scripts and tests: ``train()`` (Train), ``stop()`` (Stop), ``wait(timeout)``,
    ``load(config)`` (the preset buttons), ``clear_history()``, and ``config()`` (the
    TrainConfig the controls describe). ``controls`` maps field names to their widgets;
    ``runs`` holds the finished ``nbtrain.Run`` objects; ``status``, ``error``, ``log`` and
    ``diagnosis_html`` are what the panels show; ``redraw_count`` and ``timings`` say how
    often and how quickly the plots were updated.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module] | None = None,
        train_data=None,
        val_data=None,
        loss_fn: Callable | None = None,
        *,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        refresh_interval: float = 0.5,
        figsize: tuple[float, float] = (12.0, 3.4),
        plot_process: bool = True,
        threads: int | str | None = "auto",
    ) -> None:
        if (train_data is None) != (val_data is None):
            raise ValueError("give both train_data and val_data, or neither (for the reference experiment)")
        if model is None and train_data is not None:
            raise ValueError("train_data was given without a model: pass model= too")
        if model is not None and not (isinstance(model, nn.Module) or callable(model)):
            raise TypeError(f"model must be a torch.nn.Module or a function returning one, got {type(model).__name__}")
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be nbtrain.Callback instances, got {type(cb).__name__}")
        if isinstance(refresh_interval, bool) or not isinstance(refresh_interval, (int, float)) or refresh_interval < 0:
            raise ValueError(f"refresh_interval must be a number of seconds >= 0, got {refresh_interval!r}")
        if not (threads is None or threads == "auto" or (
                isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1)):
            raise ValueError(f"threads must be 'auto', None or an int >= 1, got {threads!r}")

        # A pristine copy, so a run never starts from the weights an earlier run trained.
        self._model = copy.deepcopy(model) if isinstance(model, nn.Module) else model
        self._train_data = train_data
        self._val_data = val_data
        self._loss_fn = loss_fn
        self._callbacks = list(callbacks)
        self.refresh_interval = float(refresh_interval)
        self.threads = threads
        self.figsize = figsize

        self._lock = threading.RLock()  # guards the records and the texts below
        self._render_lock = threading.Lock()  # one render at a time
        self._wakeup = threading.Condition()
        self._stop_event = threading.Event()
        self._records: list[_RunRecord] = []
        self._run_counter = 0
        self._current: _RunRecord | None = None
        self._trainer: Trainer | None = None
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._dirty = False
        self._epoch_dirty = False
        self._log_lines: list[str] = []
        self._status_text = ""
        self._error_text = ""
        self._diagnosis_html = ""
        self.redraw_count = 0
        self.redraw_times: list[float] = []  # perf_counter() of each finished redraw
        self.render_seconds: list[float] = []  # CPU seconds each redraw took in this process
        self.plot_note = ""  # why plots are drawn in-process, when they are
        self._plotter: PlotProcess | None = None
        if plot_process:
            try:  # starts now, so it has imported matplotlib by the time Train is pressed
                self._plotter = PlotProcess()
            except PlotProcessError as exc:
                self.plot_note = str(exc)
        else:
            self.plot_note = "plot_process=False"
        self._base = config if config is not None else presets.ROUND1
        self._build_widgets()
        self.load(self._base)
        self._set_status("Ready. Set the controls and press Train.")
        self._redraw(in_process=True)  # the helper may still be starting

    # -- widgets ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        narrow = W.Layout(width="190px")
        style = {"description_width": "initial"}
        self.lr = W.FloatLogSlider(
            value=2e-5,
            base=10,
            min=math.log10(LR_RANGE[0]),
            max=math.log10(LR_RANGE[1]),
            step=0.01,
            readout_format=".2e",
            description="learning rate",
            style=style,
            continuous_update=False,
            layout=W.Layout(width="380px"),
        )
        self.clip_on = W.Checkbox(
            value=True, description="clip gradients at", indent=False, layout=W.Layout(width="130px")
        )
        self.clip = W.FloatText(value=2.0, step=0.5, layout=W.Layout(width="80px"))
        self.patience = W.IntSlider(
            value=5, min=0, max=10, description="plateau patience", style=style, continuous_update=False
        )
        self.scheduler = W.Dropdown(options=_SCHEDULER_CHOICES, value="plateau", description="scheduler", style=style)
        self.batch_size = W.IntText(value=8, description="batch size", style=style, layout=narrow)
        self.grad_accum_steps = W.IntText(value=1, description="accumulation steps", style=style, layout=narrow)
        self.epochs = W.IntText(value=7, description="epochs", style=style, layout=W.Layout(width="130px"))
        self.seed = W.IntText(value=0, description="seed", style=style, layout=W.Layout(width="130px"))
        self.controls: dict[str, W.Widget] = {
            "lr": self.lr,
            "clip_on": self.clip_on,
            "grad_clip": self.clip,
            "scheduler_patience": self.patience,
            "scheduler": self.scheduler,
            "batch_size": self.batch_size,
            "grad_accum_steps": self.grad_accum_steps,
            "epochs": self.epochs,
            "seed": self.seed,
        }
        self.clip_on.observe(lambda change: setattr(self.clip, "disabled", not change["new"]), names="value")

        self.round1_button = W.Button(description="Load ROUND1", tooltip="lr 2e-5, clip 2.0, patience 5")
        self.round2_button = W.Button(description="Load ROUND2", tooltip="lr 1e-5, clip 3.0, patience 3")
        self.fallback = W.Dropdown(options=list(presets.FALLBACKS), description="fallback", style=style)
        self.fallback_button = W.Button(description="Load fallback")
        self.train_button = W.Button(description="Train", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.clear_button = W.Button(description="Clear history", tooltip="forget earlier runs of this session")
        self.round1_button.on_click(lambda _b: self.load(presets.ROUND1))
        self.round2_button.on_click(lambda _b: self.load(presets.ROUND2))
        self.fallback_button.on_click(lambda _b: self.load(presets.FALLBACKS[self.fallback.value]))
        self.train_button.on_click(lambda _b: self.train())
        self.stop_button.on_click(lambda _b: self.stop())
        self.clear_button.on_click(lambda _b: self.clear_history())

        self.status_widget = W.HTML()
        self.error_widget = W.HTML()
        self.plot = W.Image(format="png", layout=W.Layout(width="100%", max_width="1200px"))
        self.diagnosis_widget = W.HTML(layout=W.Layout(width="60%", max_height="420px", overflow="auto"))
        self.log_widget = W.Textarea(
            value="", disabled=True, placeholder="log lines of the runs appear here",
            layout=W.Layout(width="40%", height="300px"),
        )
        for name, widget in (("status", self.status_widget), ("error", self.error_widget), ("plot", self.plot),
                             ("diagnosis", self.diagnosis_widget), ("log", self.log_widget)):
            widget.add_class(f"nbtrain-{name}")
        for name, widget in self.controls.items():
            widget.add_class(f"nbtrain-control-{name}")
        for widget in (self.round1_button, self.round2_button, self.fallback_button, self.train_button,
                       self.stop_button, self.clear_button):
            widget.add_class("nbtrain-button-" + widget.description.lower().replace(" ", "-"))

        self.widget = W.VBox(
            [
                W.HBox([self.round1_button, self.round2_button, self.fallback, self.fallback_button]),
                W.HBox([self.lr, self.clip_on, self.clip, self.patience]),
                W.HBox([self.scheduler, self.batch_size, self.grad_accum_steps, self.epochs, self.seed]),
                W.HBox([self.train_button, self.stop_button, self.clear_button, self.status_widget]),
                self.error_widget,
                self.plot,
                W.HBox([self.diagnosis_widget, self.log_widget]),
            ]
        )
        self.widget.add_class("nbtrain-dashboard")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- texts tests and users can read -----------------------------------------------
    @property
    def status(self) -> str:
        return self._status_text

    @property
    def error(self) -> str:
        return self._error_text

    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self._log_lines)

    @property
    def diagnosis_html(self) -> str:
        return self._diagnosis_html

    @property
    def runs(self) -> list[Run]:
        """Finished runs of the session (completed, stopped or diverged), oldest first."""
        with self._lock:
            return [r.run for r in self._records if r.run is not None]

    @property
    def timings(self) -> list[dict]:
        """Per finished run: seconds from Train to the first plot showing one of its steps
        (``first_plot_s``), to the end of the run (``wall_s``), and redraws during it."""
        with self._lock:
            records = [r for r in self._records if r.run is not None]
        return [
            {
                "run": r.index,
                "first_plot_s": None if r.first_drawn is None else r.first_drawn - r.started,
                "wall_s": r.ended - r.started,
                "redraws": r.redraws,
            }
            for r in records
        ]

    @property
    def running(self) -> bool:
        """True while a run, or the final redraw after it, is still going."""
        return any(t is not None and t.is_alive() for t in (self._thread, self._refresher))

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self.status_widget.value = f"<span>{html.escape(text)}</span>"

    def _set_error(self, text: str) -> None:
        self._error_text = text
        self.error_widget.value = (
            f"<div style='color:#b00020;font-weight:bold'>{html.escape(text)}</div>" if text else ""
        )

    def _sink(self, line: str) -> None:
        with self._lock:
            self._log_lines.append(line)
            text = "\n".join(self._log_lines[-500:])
        self.log_widget.value = text

    # -- controls <-> config -----------------------------------------------------------
    def load(self, config: TrainConfig) -> None:
        """Set the controls from ``config`` (a preset); fields without a control come from it too."""
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        lo, hi = LR_RANGE
        if not lo <= config.lr <= hi:
            raise ValueError(f"lr must be within the slider's range {lo:g} to {hi:g}, got {config.lr!r}")
        self._base = config
        self.lr.value = config.lr
        self.clip_on.value = config.grad_clip is not None
        if config.grad_clip is not None:
            self.clip.value = config.grad_clip
        self.patience.max = max(self.patience.max, config.scheduler_patience)
        self.patience.value = config.scheduler_patience
        self.scheduler.value = config.scheduler
        self.batch_size.value = config.batch_size
        self.grad_accum_steps.value = config.grad_accum_steps
        self.epochs.value = config.epochs
        self.seed.value = config.seed
        self._set_error("")
        if not self.running:
            self._set_status(f"Loaded {config.name or 'config'}: {_describe(config)}.")

    def config(self) -> TrainConfig:
        """The TrainConfig the controls describe; raises ValueError for a bad value."""
        lr = float(f"{self.lr.value:.3g}")  # the slider moves in log steps; keep what its readout shows
        values = {
            "lr": lr,
            "grad_clip": float(self.clip.value) if self.clip_on.value else None,
            "scheduler_patience": int(self.patience.value),
            "scheduler": self.scheduler.value,
            "batch_size": int(self.batch_size.value),
            "grad_accum_steps": int(self.grad_accum_steps.value),
            "epochs": int(self.epochs.value),
            "seed": int(self.seed.value),
        }
        base = self._base
        unchanged = all(getattr(base, k) == v for k, v in values.items())
        return base.replace(**values, name=base.name if unchanged else "")

    # -- running ---------------------------------------------------------------------
    def train(self) -> bool:
        """Start a run with the current control values (what the Train button does).

        Returns True when a run started. A bad value or a run still going is reported
        in the error line instead, and nothing already trained is touched.
        """
        if self.running:
            self._set_error("A run is still going: press Stop or wait for it to finish.")
            return False
        try:
            config = self.config()
        except (ValueError, TypeError) as exc:
            self._set_error(f"Not started: {exc}")
            return False
        self._set_error("")
        self._stop_event.clear()
        with self._lock:
            self._run_counter += 1
            record = _RunRecord(index=self._run_counter, config=config)
            previous = self._current
            record.started = time.perf_counter()
            self._records.append(record)
            self._current = record  # the first redraw comes with the run's first step
            self._log_lines.append(f"--- run {record.label} ---")
        self.log_widget.value = "\n".join(self._log_lines[-500:])
        self._diagnosis_html = ""
        self.diagnosis_widget.value = "<i>Training... the diagnosis appears when the run ends.</i>"
        self._set_status(f"Run #{record.index}: preparing data and model...")
        self.train_button.disabled = True
        self.stop_button.disabled = False
        self._thread = threading.Thread(
            target=self._work, args=(record, previous), name=f"nbtrain-run-{record.index}", daemon=True
        )
        self._refresher = threading.Thread(
            target=self._refresh_loop, args=(self._thread,), name="nbtrain-refresh", daemon=True
        )
        self._thread.start()
        self._refresher.start()
        return True

    def stop(self) -> None:
        """End the current run after its current optimizer step (its history is kept)."""
        self._stop_event.set()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()
        if self.running:
            self._set_status("Stopping after the current step...")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run and its final redraw are done; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._thread, self._refresher):
            if thread is None:
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if thread.is_alive():
                return False
        return True

    def clear_history(self) -> None:
        """Forget the earlier runs of the session (a run in progress stays)."""
        with self._lock:
            self._records = [r for r in self._records if r is self._current and r.run is None]
        self._set_error("")
        self._redraw()

    def _new_model(self, config: TrainConfig) -> nn.Module | None:
        if self._model is None:
            return None
        if isinstance(self._model, nn.Module):
            return copy.deepcopy(self._model)
        torch.manual_seed(config.seed)
        model = self._model()
        if not isinstance(model, nn.Module):
            raise TypeError(f"the model function must return a torch.nn.Module, got {type(model).__name__}")
        return model

    def _train_threads(self) -> int | None:
        """The torch thread count for a run, or None to leave torch's setting alone."""
        if self.threads is None:
            return None
        if self.threads != "auto":
            return self.threads
        cores = os.cpu_count() or 1
        if self._plotter is None or cores < 2 or torch.get_num_threads() < cores:
            return None
        return cores - 1  # leave the plot helper a core

    def _work(self, record: _RunRecord, previous: _RunRecord | None) -> None:
        run = None
        threads, before = self._train_threads(), torch.get_num_threads()
        if threads is not None and threads != before:
            # Set from this thread and put back when the run ends: torch's intra-op pool
            # (OpenMP) takes its size from the thread that sets it.
            torch.set_num_threads(threads)
            self._sink(f"note: training on {threads} torch thread(s) instead of {before}, leaving a core for "
                       "the plot helper (Dashboard(threads=...) chooses; threads=None leaves torch alone)")
        try:
            trainer = Trainer(
                record.config,
                self._new_model(record.config),
                self._train_data,
                self._val_data,
                self._loss_fn,
                callbacks=[_Recorder(self, record), *self._callbacks],
                sink=self._sink,
            )
            self._trainer = trainer
            run = trainer.fit()
        except Exception as exc:  # a user model or data can fail in any way; show it, keep the session
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._trainer = None
            if threads is not None and threads != before:
                torch.set_num_threads(before)
        with self._lock:
            record.ended = time.perf_counter()
            record.run = run
            if run is None:  # drop the failed run; the plots go back to what they showed
                if record in self._records:
                    self._records.remove(record)
                self._current = previous if previous in self._records else None
        if run is None:
            self._set_error(f"Run #{record.index} failed: {record.error}")
            self._diagnosis_html = f"<p>Run #{record.index} failed: {html.escape(record.error)}</p>"
            self.diagnosis_widget.value = self._diagnosis_html
            self._set_status(f"Run #{record.index} failed; earlier runs are kept.")
        else:
            self._set_status(_end_status(record))
            self._show_diagnosis(record)
        self._wake(epoch_end=True)

    def _refresh_loop(self, worker: threading.Thread) -> None:
        """Redraw while ``worker`` trains, then once more when it has finished.

        A redraw happens when new rows arrived and at least ``refresh_interval`` seconds
        passed since the last one. Between epoch ends it also waits until drawing has used
        at most ``DRAW_SHARE`` of the time (the CPU seconds of the last redraw divided by
        DRAW_SHARE), so live plotting cannot slow training much; the end of an epoch is
        always drawn (at most once per ``refresh_interval``).
        """
        last = -math.inf
        while worker.is_alive():
            with self._wakeup:
                if not self._dirty:
                    self._wakeup.wait(0.25)
                dirty, epoch_dirty = self._dirty, self._epoch_dirty
            if not dirty:
                continue
            cost = self.render_seconds[-1] if self.render_seconds else 0.0  # this process's share
            interval = self.refresh_interval if epoch_dirty else max(self.refresh_interval, cost / DRAW_SHARE)
            wait = last + interval - time.perf_counter()
            if wait > 0:
                time.sleep(min(wait, 0.1))  # an epoch end is noticed within 0.1 s
                continue
            with self._wakeup:
                self._dirty = self._epoch_dirty = False
            self._redraw()
            self._update_running_status()
            last = time.perf_counter()
        worker.join()
        with self._wakeup:
            self._dirty = self._epoch_dirty = False
        self._redraw()  # the final picture of the run
        self.train_button.disabled = False
        self.stop_button.disabled = True

    def _wake(self, epoch_end: bool) -> None:
        with self._wakeup:
            self._dirty = True
            if epoch_end:
                self._epoch_dirty = True
            self._wakeup.notify()

    def _update_running_status(self) -> None:
        record = self._current
        if record is None or record.run is not None or self._stop_event.is_set():
            return
        with self._lock:
            n_steps, n_epochs, spe = len(record.steps), len(record.epochs), record.steps_per_epoch
        if not n_steps:
            return
        elapsed = time.perf_counter() - (record.fit_started or record.started)
        epoch = min(n_steps // max(spe, 1), record.config.epochs - 1)
        self._set_status(
            f"Run #{record.index}: epoch {epoch + 1}/{record.config.epochs}, step {n_steps:,}, "
            f"{n_epochs} epoch(s) done, {n_steps / max(elapsed, 1e-9):.0f} steps/s"
        )

    # -- drawing ---------------------------------------------------------------------
    def _redraw(self, in_process: bool = False) -> None:
        with self._render_lock:
            with self._lock:
                snapshot = [
                    (r.index, r.label, r.config, list(r.steps), list(r.epochs), r.steps_per_epoch, r is self._current)
                    for r in self._records
                ]
                current = self._current if self._current in self._records else None
                shows_current = current is not None and bool(current.steps)
            cpu0 = time.thread_time()
            png = None
            if self._plotter is not None and not in_process:
                try:
                    png = self._plotter.render(snapshot, figsize=self.figsize)
                except PlotProcessNotReady:  # still importing matplotlib: draw here this once
                    pass
                except PlotProcessError as exc:  # draw here from now on
                    self.plot_note = str(exc)
                    self._plotter.close()
                    self._plotter = None
            if png is None:
                png = render_png(snapshot, figsize=self.figsize)
            self.plot.value = png
            t1 = time.perf_counter()
            self.render_seconds.append(time.thread_time() - cpu0)
            self.redraw_times.append(t1)
            self.redraw_count += 1
            if current is not None:
                current.redraws += 1
                if shows_current and current.first_drawn is None:
                    current.first_drawn = t1

    @property
    def plots_in_helper(self) -> bool:
        """True while the plots are drawn by the helper process (False: in this process)."""
        return self._plotter is not None and self._plotter.alive

    def close(self) -> None:
        """Stop a run in progress, wait for it, and end the plot helper process."""
        self.stop()
        self.wait(60)
        plotter, self._plotter = self._plotter, None
        if plotter is not None:
            plotter.close()

    def _show_diagnosis(self, record: _RunRecord) -> None:
        run = record.run
        parts = [f"<h4>Run #{record.index}: {html.escape(record.label)} ({html.escape(run.status)})</h4>"]
        if run.message:
            parts.append(f"<p>{html.escape(run.message)}</p>")
        if not run.history.epochs:
            parts.append("<p>No complete epoch, so there is nothing to diagnose yet.</p>")
        else:
            parts.append(_section("Diagnosis", "diagnostics", "diagnose", run))
            parts.append(_section("Expectations", "expectations", "check_expectations", run))
        self._diagnosis_html = "\n".join(parts)
        self.diagnosis_widget.value = self._diagnosis_html


def dashboard(
    model: nn.Module | Callable[[], nn.Module] | None = None,
    train_data=None,
    val_data=None,
    loss_fn: Callable | None = None,
    **kwargs,
) -> Dashboard:
    """Build a :class:`Dashboard`; show it with ``display(d)`` or as a cell's last line."""
    return Dashboard(model, train_data, val_data, loss_fn, **kwargs)


# -- helpers ---------------------------------------------------------------------------
def _describe(c: TrainConfig) -> str:
    clip = "off" if c.grad_clip is None else f"{c.grad_clip:g}"
    return (
        f"lr {c.lr:g}, clip {clip}, patience {c.scheduler_patience}, {c.scheduler}, batch {c.batch_size}"
        f" x {c.grad_accum_steps} accumulation, {c.epochs} epochs, seed {c.seed}"
    )


def _end_status(record: _RunRecord) -> str:
    run = record.run
    h = run.history
    took = record.ended - record.started
    text = f"Run #{record.index} {run.status}: {len(h.epochs)} epoch(s), {len(h.steps):,} steps in {took:.1f} s"
    if h.epochs:
        text += f"; last val loss {h.epochs[-1]['val_loss']:.4f}"
    return text + "."


def _section(title: str, module: str, func: str, run: Run) -> str:
    """Run ``nbtrain.<module>.<func>(history, config)`` and render its markdown, or say why not."""
    import importlib

    try:
        fn = getattr(importlib.import_module(f"nbtrain.{module}"), func)
    except (ImportError, AttributeError):
        return f"<p><b>{title}:</b> nbtrain.{module}.{func} is not available in this installation.</p>"
    try:
        result = fn(run.history, run.config)
        return markdown_to_html(result.to_markdown())
    except Exception as exc:  # a diagnosis failing must not take the dashboard down
        return f"<p><b>{title} failed:</b> {html.escape(f'{type(exc).__name__}: {exc}')}</p>"


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with mistune when it is installed (JupyterLab brings it), else as text."""
    try:
        import mistune

        out = mistune.create_markdown(plugins=["table", "strikethrough"])(text)
    except Exception:
        return f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"
    # Reports use h1-h3; inside a panel below the plots, smaller headings read better.
    for level in (3, 2, 1):
        out = out.replace(f"<h{level}>", f"<h{level + 3}>").replace(f"</h{level}>", f"</h{level + 3}>")
    return out


__all__ = ["Dashboard", "dashboard", "render_png", "markdown_to_html", "CONTROLLED_FIELDS", "LR_RANGE"]

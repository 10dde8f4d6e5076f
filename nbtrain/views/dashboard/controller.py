"""The dashboard's controller: the runs of a session, trained in a background thread.

How its threads share the work is in the package's docstring (``nbtrain.views.dashboard``).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from typing import Callable, Sequence

import torch
from torch import nn

from ...training import devices, presets
from ...training.callbacks import Callback
from ...training.config import TrainConfig
from ...training.trainer import Run, Trainer
from ..liveplot import DPI, FIGSIZE
from . import report
from .drawing import Drawing, snapshot
from .layout import DashboardLayout
from .pacing import RedrawPacer
from .session import Recorder, RunRecord, Session

_LOG_LINES_SHOWN = 500


class Dashboard(DashboardLayout):
    """Interactive training: controls, live plots, diagnosis and log for one session.

    With no arguments it trains the reference experiment. Pass ``model`` (an
    ``nn.Module``, copied afresh for every run so each run starts from the same weights,
    or a zero-argument function returning a new module, called after seeding so the
    seed control also sets the initialisation) with ``train_data`` and ``val_data``
    (anything ``nbtrain.train`` accepts) to tune your own model. ``callbacks`` are
    passed to every run. ``config`` is the starting point (default: ``presets.ROUND1``).

    Each run trains on the device and in the precision the controls say (``"auto"``: CUDA,
    then MPS, then the CPU; the choices are what ``devices.available()`` finds). A device
    this machine lacks is refused before the run starts; the log's run line and the status
    line say which device and precision the run used.

    The plots are drawn by a helper process (``nbtrain.views.plotprocess``;
    ``plot_process=False`` draws in this process instead), as often as ``pacer`` allows: at
    least ``refresh_interval`` seconds apart and within ``DRAW_SHARE`` of the time
    (``nbtrain.views.dashboard.pacing``). With ``threads="auto"`` (the default), a run whose
    torch threads would take every core trains on one fewer, leaving the helper a core, says
    so in the log, and puts the setting back when it ends. (Measured on 2 cores before the
    redraws were paced, with ``benchmarks/bench_widgets.py``: 2 torch threads plus the helper
    trained about 2x slower than headless; 1 thread plus the helper matched a 1-thread
    headless run.) ``threads=N`` trains on N threads; ``threads=None`` leaves torch's setting alone.

    Show it with ``display(board)`` (or as a cell's last value). The same actions are
    methods, for scripts and tests: ``train()`` (Train), ``stop()`` (Stop), ``wait(timeout)``,
    ``load(config)`` (the preset buttons), ``clear_history()``, and ``config()`` (the
    TrainConfig the controls describe). ``controls`` maps field names to their widgets;
    ``runs`` holds the finished ``nbtrain.Run`` objects; ``status``, ``error``, ``log`` and
    ``diagnosis_html`` are what the panels show; ``redraw_count``, ``timings``,
    ``render_seconds`` and ``helper_seconds`` say how often, how quickly and at what CPU cost
    (in this process and in the helper) the plots were updated.
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
        figsize: tuple[float, float] = FIGSIZE,
        plot_process: bool = True,
        threads: int | str | None = "auto",
    ) -> None:
        _check_arguments(model, train_data, val_data, config, callbacks, refresh_interval, threads)
        # A pristine copy, so a run never starts from the weights an earlier run trained.
        self._model = copy.deepcopy(model) if isinstance(model, nn.Module) else model
        self._train_data = train_data
        self._val_data = val_data
        self._loss_fn = loss_fn
        self._callbacks = list(callbacks)
        self.refresh_interval = float(refresh_interval)
        self.threads = threads
        self.figsize = figsize
        self._init_session()
        self.drawing = Drawing(plot_process)
        super().__init__(image_width=round(figsize[0] * DPI))  # the widgets
        self._wire_buttons()
        self._base = config if config is not None else presets.ROUND1
        self.load(self._base)
        self._set_status("Ready. Set the controls and press Train.")
        self._redraw(in_process=True)  # the helper may still be starting

    def _init_session(self) -> None:
        self.session = Session()
        self._lock = self.session.lock  # guards the records and the log lines
        self._render_lock = threading.Lock()  # one render at a time
        self._wakeup = threading.Condition()
        self._stop_event = threading.Event()
        self._trainer: Trainer | None = None
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._dirty = False
        self.pacer = RedrawPacer(self.refresh_interval)
        self._log_lines: list[str] = []
        self.redraw_count = 0
        self.redraw_times: list[float] = []  # perf_counter() of each finished redraw
        self.render_seconds: list[float] = []  # CPU seconds each redraw took in this process
        self.helper_seconds: list[float] = []  # CPU seconds each redraw took in the plot helper (0: none)

    def _wire_buttons(self) -> None:
        self.round1_button.on_click(lambda _b: self.load(presets.ROUND1))
        self.round2_button.on_click(lambda _b: self.load(presets.ROUND2))
        self.fallback_button.on_click(lambda _b: self.load(presets.FALLBACKS[self.fallback.value]))
        self.train_button.on_click(lambda _b: self.train())
        self.stop_button.on_click(lambda _b: self.stop())
        self.clear_button.on_click(lambda _b: self.clear_history())

    # -- what the session holds ----------------------------------------------------------
    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self._log_lines)

    @property
    def runs(self) -> list[Run]:
        """Finished runs of the session (completed, stopped or diverged), oldest first."""
        return [r.run for r in self.session.finished()]

    @property
    def timings(self) -> list[dict]:
        """Per finished run: seconds from Train to the first plot showing one of its steps
        (``first_plot_s``), to the end of the run (``wall_s``), and redraws during it."""
        return [r.timing() for r in self.session.finished()]

    @property
    def running(self) -> bool:
        """True while a run, or the final redraw after it, is still going."""
        return any(t is not None and t.is_alive() for t in (self._thread, self._refresher))

    @property
    def plot_note(self) -> str:
        """Why the plots are drawn in this process, when they are."""
        return self.drawing.note

    @property
    def plots_in_helper(self) -> bool:
        """True while the plots are drawn by the helper process (False: in this process)."""
        return self.drawing.in_helper

    def _sink(self, line: str) -> None:
        with self._lock:
            self._log_lines.append(line)
            text = "\n".join(self._log_lines[-_LOG_LINES_SHOWN:])
        self.log_widget.value = text

    # -- controls <-> config -----------------------------------------------------------
    def load(self, config: TrainConfig) -> None:
        """Set the controls from ``config`` (a preset); fields without a control come from it too."""
        self.show_config(config)
        self._base = config
        self._set_error("")
        if not self.running:
            self._set_status(f"Loaded {config.name or 'config'}: {report.describe(config)}.")

    def config(self) -> TrainConfig:
        """The TrainConfig the controls describe; raises ValueError for a bad value."""
        values = self.control_values()
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
            device = str(devices.resolve_device(config.device))  # a device this machine lacks: said here
        except (ValueError, TypeError) as exc:
            self._set_error(f"Not started: {exc}")
            return False
        self._set_error("")
        self._stop_event.clear()
        record, previous = self.session.new_run(config, device)  # the first redraw comes with its first step
        self._sink(f"--- run {record.label} on {record.ran_on} ---")
        self._set_diagnosis("", placeholder="<i>Training... the diagnosis appears when the run ends.</i>")
        self._set_status(f"Run #{record.index}: preparing data and model ({record.ran_on})...")
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
        self.session.clear()
        self._set_error("")
        self._redraw()

    def close(self) -> None:
        """Stop a run in progress, wait for it, and end the plot helper process."""
        self.stop()
        self.wait(60)
        self.drawing.close()

    # -- the training thread -------------------------------------------------------------
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
        if self.drawing.plotter is None or cores < 2 or torch.get_num_threads() < cores:
            return None
        return cores - 1  # leave the plot helper a core

    def _work(self, record: RunRecord, previous: RunRecord | None) -> None:
        """The training thread: fit, then keep the run (or drop it when it failed) and report."""
        run = self._fit(record)
        self.session.end_run(record, run, previous)  # a failed run is dropped
        if run is None:
            self._set_error(f"Run #{record.index} failed: {record.error}")
            self._set_diagnosis(report.failure_html(record))
            self._set_status(f"Run #{record.index} failed; earlier runs are kept.")
        else:
            self._set_status(report.end_status(record))
            self._set_diagnosis(report.diagnosis_html(record))
        self._wake()

    def _fit(self, record: RunRecord) -> Run | None:
        """Train ``record``'s config; None (and ``record.error``) when the run raised."""
        threads, before = self._train_threads(), torch.get_num_threads()
        if threads is not None and threads != before:
            # Set from this thread and put back when the run ends: torch's intra-op pool
            # (OpenMP) takes its size from the thread that sets it.
            torch.set_num_threads(threads)
            self._sink(f"note: training on {threads} torch thread(s) instead of {before}, leaving a core for "
                       "the plot helper (Dashboard(threads=...) chooses; threads=None leaves torch alone)")
        recorder = Recorder(record, self._lock, self._stop_event, self._wake)
        try:
            trainer = Trainer(record.config, self._new_model(record.config), self._train_data, self._val_data,
                              self._loss_fn, callbacks=[recorder, *self._callbacks], sink=self._sink)
            self._trainer = trainer
            return trainer.fit()
        except Exception as exc:  # a user model or data can fail in any way; show it, keep the session
            record.error = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            self._trainer = None
            if threads is not None and threads != before:
                torch.set_num_threads(before)

    # -- the refresher thread --------------------------------------------------------------
    def _refresh_loop(self, worker: threading.Thread) -> None:
        """Redraw while ``worker`` trains, then once more when it has finished.

        A redraw happens when new rows arrived and the pacer allows it (``self.pacer``, see
        ``nbtrain.views.dashboard.pacing``): at least ``refresh_interval`` seconds apart, and
        spaced so that drawing's CPU, in this process and in the plot helper, stays below
        ``DRAW_SHARE`` of the time. Rows that arrive meanwhile wait for the next redraw.
        """
        self.pacer.min_interval = self.refresh_interval
        self.pacer.reset()  # the run's first step is drawn at once
        while worker.is_alive():
            with self._wakeup:
                if not self._dirty:
                    self._wakeup.wait(0.25)
                dirty = self._dirty
            if not dirty:
                continue
            wait = self.pacer.wait()
            if wait > 0:
                time.sleep(min(wait, 0.25))  # the run's end is noticed within 0.25 s
                continue
            with self._wakeup:
                self._dirty = False
            self.pacer.began()
            self.pacer.record(*self._redraw())
            self._update_running_status()
        worker.join()
        with self._wakeup:
            self._dirty = False
        self._redraw()  # the final picture of the run
        self.train_button.disabled = False
        self.stop_button.disabled = True

    def _wake(self, epoch_end: bool = False) -> None:
        """New rows (``epoch_end``: an epoch row) for the refresher to draw."""
        with self._wakeup:
            self._dirty = True
            self._wakeup.notify()

    def _update_running_status(self) -> None:
        record = self.session.current
        if record is None or record.run is not None or self._stop_event.is_set():
            return
        with self._lock:
            text = report.running_status(record)
        if text:
            self._set_status(text)

    def _redraw(self, in_process: bool = False) -> tuple[float, float]:
        """Draw the session's runs into the plot widget and count the redraw; returns its CPU
        seconds in this process and in the plot helper."""
        with self._render_lock:
            with self._lock:
                current = self.session.current if self.session.current in self.session.records else None
                runs = snapshot(self.session.records, self.session.current)
                shows_current = current is not None and bool(current.steps)
            cpu0 = time.thread_time()
            self.plot.value = self.drawing.png(runs, self.figsize, in_process=in_process)
            t1 = time.perf_counter()
            self.render_seconds.append(time.thread_time() - cpu0)
            self.helper_seconds.append(self.drawing.helper_cpu)
            self.redraw_times.append(t1)
            self.redraw_count += 1
            if current is not None:
                current.redraws += 1
                if shows_current and current.first_drawn is None:
                    current.first_drawn = t1
            return self.render_seconds[-1], self.helper_seconds[-1]


def _check_arguments(model, train_data, val_data, config, callbacks, refresh_interval, threads) -> None:
    """Raise for a bad ``Dashboard`` argument, naming it and its value."""
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


__all__ = ["Dashboard"]

"""The plot helper process: the live plots drawn beside the kernel, so training keeps its pace.

Drawing the figure is matplotlib's pure Python; in the training process it would hold the
GIL that the training thread needs between its torch calls, and slow training by far more
than the drawing's own share of the CPU (measured: 20-28% with redraws at 5% of the time).
In a helper process it runs on another core, and all the training process does per redraw
is send the rows that arrived since the last one and read back the PNG. The helper runs at
a lower priority (``NICENESS``), so that when torch's threads want every core they get them. The helper keeps
one ``nbtrain.views.liveplot.LiveFigure`` between redraws, warmed up before it says it is
ready (fonts loaded, panels made, a made-up run drawn), so a redraw updates line data and
redraws only what changed (measured on 7-epoch reference runs: a median of about 30 ms of
its CPU, 15-35 ms when only line data change, 30-70 ms when limits or artists change; a
fresh figure costs about 0.15-0.3 s); its PNGs are the bytes ``render_png`` gives for the
same snapshot. The objects alive once it is ready are frozen out of the garbage collector
(``gc.freeze``), so a full collection does not add 45-60 ms to a redraw.

The helper imports this module from the same nbtrain as the dashboard (the folder that
holds the package goes first on its path; see ``helper_command``), so it loads the
standard library, matplotlib and numpy, ``nbtrain.measures`` and ``nbtrain.views.liveplot``,
never torch or ipywidgets (``import nbtrain`` is lazy). It talks over its stdin/stdout
pipes in length-prefixed pickle frames, keeps its own copy of the runs' rows, and exits
when its stdin closes (the dashboard is garbage-collected or the kernel ends). Anything
that goes wrong with it raises ``PlotProcessError``; the dashboard then draws in-process.
"""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import time

from .liveplot import DPI, FIGSIZE, LiveFigure, plot_settings

__all__ = ["NICENESS", "PlotProcess", "PlotProcessError", "PlotProcessNotReady", "helper_command", "warm_figure"]

_STEP_KEYS = ("epoch", "step", "loss", "grad_norm", "clipped", "lr")  # what the plots read of a step row
_HEADER = struct.Struct(">Q")
NICENESS = 5  # the helper runs at this much lower a priority than the kernel: training comes first
# The folder that holds the nbtrain package (the checkout, or site-packages).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PlotProcessError(RuntimeError):
    """The helper process could not start, died, or answered with an error."""


class PlotProcessNotReady(PlotProcessError):
    """The helper has not finished starting (importing matplotlib); draw elsewhere this time."""


def _write_frame(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream):
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("pipe closed")
    (n,) = _HEADER.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError("pipe closed mid-frame")
    return pickle.loads(data)


class PlotProcess:
    """``render_png`` in a helper process; ``render(snapshot)`` has ``render_png``'s contract.

    Only the rows added since the previous call cross the pipe (rows are only ever
    appended to a run; a run that disappears from the snapshot is dropped). One caller at
    a time: the dashboard serialises its redraws. ``renders`` counts the PNGs it returned;
    ``cpu_seconds`` holds the helper's CPU time per render and ``work`` what each render
    redid (``LiveFigure.work``: "rebuild", "frame" or "steady"), for benchmarks.
    """

    def __init__(self, reply_timeout: float = 30.0) -> None:
        self.reply_timeout = reply_timeout
        self.renders = 0
        self.cpu_seconds: list[float] = []
        self.work: list[str] = []
        self._sent: dict[int, tuple[int, int]] = {}  # run index -> (step rows, epoch rows) sent
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        try:
            self._proc = subprocess.Popen(
                helper_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "MPLBACKEND": "Agg"},
            )
        except OSError as exc:
            raise PlotProcessError(f"could not start the plot process: {exc}") from exc
        self._ready = threading.Event()
        self._start_error = ""
        threading.Thread(target=self._await_ready, name="nbtrain-plot-start", daemon=True).start()

    def _await_ready(self) -> None:
        # The helper says "ready" once matplotlib and Pillow are imported (about a second).
        proc = self._proc
        try:
            hello = _read_frame(proc.stdout)
            if hello != "ready":
                raise EOFError(f"unexpected greeting {hello!r}")
        except Exception as exc:
            self._start_error = f"the plot process did not start: {exc}"
        self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the helper has started (True) or ``timeout`` passed (False)."""
        return self._ready.wait(timeout) and not self._start_error

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def render(self, snapshot: list[tuple], figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI) -> bytes:
        if not self._ready.is_set():
            raise PlotProcessNotReady("the plot process is still starting")
        with self._lock:
            if self._start_error:
                raise PlotProcessError(self._start_error)
            if not self.alive:
                raise PlotProcessError("the plot process is not running")
            runs = []
            sent = {}
            for index, label, config, steps, epochs, spe, is_current in snapshot:
                n_steps, n_epochs = self._sent.get(index, (0, 0))
                new_steps = [tuple(r[k] for k in _STEP_KEYS) for r in steps[n_steps:]]
                new_epochs = [dict(r) for r in epochs[n_epochs:]]
                runs.append((index, label, plot_settings(config), n_steps, new_steps, n_epochs, new_epochs, spe,
                             is_current))
                sent[index] = (len(steps), len(epochs))
            # A helper that hangs must not hang the dashboard: past the timeout it is killed,
            # the read below sees the pipe close, and the caller draws in-process.
            watchdog = threading.Timer(self.reply_timeout, self._kill_quietly, args=(self._proc,))
            watchdog.daemon = True
            watchdog.start()
            try:
                _write_frame(self._proc.stdin, {"runs": runs, "figsize": tuple(figsize), "dpi": dpi})
                reply = _read_frame(self._proc.stdout)
            except (OSError, EOFError, ValueError, pickle.PickleError) as exc:
                self._kill()
                raise PlotProcessError(f"the plot process stopped answering: {exc}") from exc
            finally:
                watchdog.cancel()
            if "error" in reply:
                # The helper's copy of the rows may now be off: start afresh next time.
                self._sent = {}
                raise PlotProcessError(f"the plot process failed to draw: {reply['error']}")
            self._sent = sent
            self.renders += 1
            self.cpu_seconds.append(reply["cpu_s"])
            self.work.append(reply["work"])
            return reply["png"]

    def close(self) -> None:
        """End the helper (closing its stdin ends its loop); kill it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    @staticmethod
    def _kill_quietly(proc: subprocess.Popen) -> None:
        try:
            proc.kill()
        except OSError:
            pass

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _serve(stdin, stdout) -> None:
    """The helper's loop: apply each frame's new rows, redraw its kept figure, answer with the PNG."""
    import gc

    import matplotlib.backends.backend_agg  # noqa: F401  (the slow imports, before "ready")
    import matplotlib.figure  # noqa: F401
    import numpy  # noqa: F401

    figure: LiveFigure | None = warm_figure()  # kept between frames: a redraw updates it
    # What the imports and the warm-up made lives as long as the helper: out of the collector's
    # way, so that a full collection (seen taking 45-60 ms of a redraw) scans only what is new.
    gc.freeze()
    _write_frame(stdout, "ready")
    runs: dict[int, dict] = {}
    while True:
        try:
            msg = _read_frame(stdin)
        except EOFError:
            return
        try:
            t0 = time.process_time()
            order = _apply_rows(runs, msg["runs"])
            if figure is None or (figure.figsize, figure.dpi) != (tuple(map(float, msg["figsize"])), msg["dpi"]):
                figure = LiveFigure(msg["figsize"], msg["dpi"])
            before = figure.work_counts()
            png = figure.render(order)
            reply = {"png": png, "cpu_s": time.process_time() - t0, "work": figure.work_since(before)}
        except Exception as exc:
            runs.clear()
            figure = None  # it may be half-updated: start afresh
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        _write_frame(stdout, reply)


def warm_figure() -> LiveFigure:
    """A figure at the dashboard's size that has drawn a made-up run beside a finished one,
    and the picture of no runs, so that the first redraws do not pay for loading fonts, laying
    out the first texts and making the panels (about 0.15-0.3 s); done before the helper says "ready"."""
    settings = {"grad_clip": 1.0, "scheduler": "plateau", "epochs": 3}
    steps = [{"epoch": i // 10, "step": i, "loss": 1.0 / (1 + i), "grad_norm": 0.5 + 0.05 * i, "clipped": i % 4 == 0,
              "lr": 1e-3 if i < 10 else 1e-4} for i in range(20)]
    epochs = [{"epoch": e, "train_loss": 1.0 / (1 + e), "val_loss": 1.1 / (1 + e), "lr_start": 1e-3,
               "lr": 1e-3 if e == 0 else 1e-4, "n_steps": 10} for e in range(2)]
    figure = LiveFigure(FIGSIZE, DPI)
    figure.render([])  # "no run yet", kept for when the history is cleared
    figure.render([(1, "#1 warm-up", settings, steps, epochs, 10, False),
                   (2, "#2 warm-up", settings, steps, epochs, 10, True)])
    return figure


def _apply_rows(runs: dict[int, dict], sent: list[tuple]) -> list[tuple]:
    """Append a frame's new rows to the helper's copy of the runs; the snapshot they make.

    Each run keeps the same row lists from frame to frame (rows are only appended), so the
    kept figure can tell a run whose rows did not change.
    """
    order = []
    for index, label, config, n_steps, new_steps, n_epochs, new_epochs, spe, is_current in sent:
        run = runs.get(index)
        if run is None or len(run["steps"]) != n_steps or len(run["epochs"]) != n_epochs:
            if n_steps or n_epochs:  # the sender thinks we have rows we do not have
                raise RuntimeError(f"out of step on run {index}")
            run = runs[index] = {"steps": [], "epochs": []}
        run["steps"].extend(dict(zip(_STEP_KEYS, r)) for r in new_steps)
        run["epochs"].extend(new_epochs)
        order.append((index, label, config, run["steps"], run["epochs"], spe, is_current))
    for index in set(runs) - {item[0] for item in order}:
        del runs[index]
    return order


def helper_command(then: str = "plotprocess.serve_stdio()") -> list[str]:
    """The command line of the helper process: import this module, then run ``then``.

    The folder holding this nbtrain goes first on the helper's ``sys.path`` (in place of
    the working directory), so the helper runs the same code as the dashboard wherever the
    kernel was started and however nbtrain was put on the kernel's path.
    """
    boot = (
        f"import sys; root = {_PACKAGE_PARENT!r}; "
        "sys.path[:] = [root] + [p for p in sys.path if p not in ('', root)]; "
        "from nbtrain.views import plotprocess; "
    )
    return [sys.executable, "-u", "-c", boot + then]


def serve_stdio() -> None:
    """The helper's entry point: lower its priority, then serve frames on stdin/stdout until stdin closes."""
    _lower_priority()
    _serve(sys.stdin.buffer, sys.stdout.buffer)


def _lower_priority() -> None:
    """``os.nice(NICENESS)``: when training's threads want every core, they get them first and
    the drawing waits (where the system has no ``nice``, the helper runs as it is)."""
    try:
        os.nice(NICENESS)
    except (AttributeError, OSError):
        pass


if __name__ == "__main__":  # python -m nbtrain.views.plotprocess: the helper, by hand
    serve_stdio()

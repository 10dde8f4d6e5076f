"""Drawing the dashboard's live plots, in a helper process so training keeps its pace.

``render_png(snapshot)`` draws the three panels (losses, pre-clip gradient norms with the
clip line, LR with the scheduler's cuts) of every run in ``snapshot`` into PNG bytes with
matplotlib's Agg canvas (no pyplot: no figure is left open).

``PlotProcess`` runs ``render_png`` in a separate Python process. Drawing a figure is a
few hundred milliseconds of pure Python; in the training process it would hold the GIL
that the training thread needs between its torch calls, and slow training by far more
than the drawing's own share of the CPU (measured: 20-28% with redraws at 5% of the
time). In a helper process it runs on another core, and all the training process does
per redraw is send the rows that arrived since the last one and read back the PNG.

The helper is this file run as a script (``python .../liveplot.py``), so it imports only
the standard library, matplotlib and Pillow, never torch or the rest of nbtrain. It
talks over its stdin/stdout pipes in length-prefixed pickle frames, keeps its own copy
of the runs' rows, and exits when its stdin closes (the dashboard is garbage-collected
or the kernel ends). Anything that goes wrong with it raises ``PlotProcessError``; the
dashboard then draws in-process, as before.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["render_png", "PlotProcess", "PlotProcessError", "PlotProcessNotReady"]

_MAX_POINTS = 600  # step curves are thinned to about this many points per run and panel
_STEP_KEYS = ("epoch", "step", "loss", "grad_norm", "clipped", "lr")
_HEADER = struct.Struct(">Q")


def _cfg(config: Any, key: str):
    """A config field from a TrainConfig or from the small dict the helper process receives."""
    return config[key] if isinstance(config, dict) else getattr(config, key)


def _buckets(n: int, max_points: int) -> int:
    return max(1, math.ceil(n / max_points))


def _thin_mean(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Average runs of consecutive points so at most ``max_points`` remain (smooths noisy losses)."""
    k = _buckets(len(xs), max_points)
    if k == 1:
        return xs, ys
    out_x, out_y = [], []
    for i in range(0, len(xs), k):
        chunk = ys[i : i + k]
        out_x.append(xs[min(i + k, len(xs)) - 1])
        out_y.append(sum(chunk) / len(chunk))
    return out_x, out_y


def _thin_envelope(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Keep each run's smallest and largest point, so spikes survive the thinning."""
    k = _buckets(len(xs), max_points // 2)
    if k == 1:
        return xs, ys
    out_x, out_y = [], []
    for i in range(0, len(xs), k):
        chunk = ys[i : i + k]
        lo = min(range(len(chunk)), key=chunk.__getitem__)
        hi = max(range(len(chunk)), key=chunk.__getitem__)
        for j in sorted({lo, hi}):
            out_x.append(xs[i + j])
            out_y.append(chunk[j])
    return out_x, out_y


def _thin_last(xs: list, ys: list, max_points: int = _MAX_POINTS) -> tuple[list, list]:
    """Keep every k-th point and the points where the value changes (for step-like LR curves)."""
    k = _buckets(len(xs), max_points)
    if k == 1:
        return xs, ys
    keep = [i for i in range(len(xs)) if i % k == 0 or i == len(xs) - 1 or ys[i] != ys[i - 1]]
    return [xs[i] for i in keep], [ys[i] for i in keep]


def render_png(snapshot: list[tuple], figsize: tuple[float, float] = (12.0, 3.4), dpi: int = 72) -> bytes:
    """Draw losses, pre-clip gradient norms and LR of the runs in ``snapshot`` as PNG bytes.

    Each snapshot item is ``(index, label, config, steps, epochs, steps_per_epoch, is_current)``
    with ``steps`` and ``epochs`` rows as in ``nbtrain.history`` and ``config`` a
    ``TrainConfig`` or a dict with its ``grad_clip`` and ``scheduler``. The current run is drawn
    in full colour; the others faintly. The x axis is epochs (a step at position k of
    epoch e sits at ``e + (k + 1) / steps_per_epoch``), so runs with different batch
    sizes line up. Step curves are thinned to a few hundred points (a panel is about
    300 pixels wide): losses are averaged, gradient norms keep each bucket's extremes.
    Drawing is kept cheap on purpose (fixed layout and legend places, no minor tick
    labels), because it runs while training shares the CPU.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator
    from PIL import Image

    fig = Figure(figsize=figsize, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax_loss, ax_grad, ax_lr = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.14, top=0.9, wspace=0.22)
    ax_loss.set_title("loss (train per step, epoch means; val)", fontsize=9)
    ax_grad.set_title("pre-clip gradient norm per step", fontsize=9)
    ax_lr.set_title("learning rate (dotted: scheduler cut)", fontsize=9)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    current_clip = None
    has_data = False
    for index, label, config, steps, epochs, spe, is_current in snapshot:
        if not steps and not epochs:
            continue
        has_data = True
        spe = spe or (epochs[0]["n_steps"] if epochs else 1) or 1
        xs = [(r["step"] + 1) / spe for r in steps]
        faint = not is_current
        color = palette[(index - 1) % len(palette)]
        alpha = 0.35 if faint else 1.0
        # losses: per-step training loss (thin, averaged), epoch train and validation loss
        if steps and not faint:
            x, y = _thin_mean(xs, [r["loss"] for r in steps])
            ax_loss.plot(x, y, color=color, alpha=0.3, lw=0.7)
        if epochs:
            ex = [r["epoch"] + 1 for r in epochs]
            if not faint:
                ax_loss.plot(ex, [r["train_loss"] for r in epochs], "o-", color=color, lw=1.0, ms=3,
                             label=f"{label} train")
            ax_loss.plot(ex, [r["val_loss"] for r in epochs], "s--", color=color, alpha=alpha,
                         lw=1.5 if not faint else 1.0, ms=4 if not faint else 2, label=f"{label} val")
        # gradient norms, with the clip threshold
        if steps:
            x, y = _thin_envelope(xs, [r["grad_norm"] for r in steps])
            ax_grad.plot(x, y, color=color, alpha=0.25 if faint else 0.8, lw=0.6, label=label)
            clip = _cfg(config, "grad_clip")
            if not faint and clip is not None:
                current_clip = clip
                clipped = sum(1 for r in steps if r["clipped"])
                ax_grad.axhline(clip, color="#b00020", ls="--", lw=1.2,
                                label=f"clip {clip:g} ({clipped / len(steps):.0%} of steps clipped)")
        # learning rate per step, and the plateau scheduler's cuts
        if steps:
            x, y = _thin_last(xs, [r["lr"] for r in steps])
            ax_lr.plot(x, y, color=color, alpha=alpha, lw=1.4 if not faint else 1.0, drawstyle="steps-pre",
                       label=label)
        if epochs and _cfg(config, "scheduler") == "plateau":
            for r in epochs:
                if r["lr"] < r.get("lr_start", r["lr"]):
                    ax_lr.axvline(r["epoch"] + 1, color=color, alpha=alpha, ls=":", lw=1.2)
                    if not faint:
                        ax_lr.annotate(f"{r['lr_start']:.1e} -> {r['lr']:.1e}", (r["epoch"] + 1, r["lr"]),
                                       fontsize=7, color=color, textcoords="offset points", xytext=(3, 4))
    for ax in (ax_loss, ax_grad, ax_lr):
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    if has_data:
        for ax in (ax_grad, ax_lr):
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
        for ax, loc in ((ax_loss, "upper right"), (ax_grad, "upper left")):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc=loc)
        if current_clip is None:
            ax_grad.text(0.99, 0.02, "clipping off", transform=ax_grad.transAxes, ha="right", fontsize=8)
    else:
        for ax in (ax_loss, ax_grad, ax_lr):
            ax.text(0.5, 0.5, "no run yet", transform=ax.transAxes, ha="center", va="center", color="grey")
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)  # fast: this runs next to training
    return buf.getvalue()


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
    ``cpu_seconds`` holds the helper's CPU time per render (for benchmarks).
    """

    def __init__(self, reply_timeout: float = 30.0) -> None:
        self.reply_timeout = reply_timeout
        self.renders = 0
        self.cpu_seconds: list[float] = []
        self._sent: dict[int, tuple[int, int]] = {}  # run index -> (step rows, epoch rows) sent
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-u", os.path.abspath(__file__), "--serve"],
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

    def render(self, snapshot: list[tuple], figsize: tuple[float, float] = (12.0, 3.4), dpi: int = 72) -> bytes:
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
                runs.append((index, label, {"grad_clip": _cfg(config, "grad_clip"),
                                            "scheduler": _cfg(config, "scheduler")},
                             n_steps, new_steps, n_epochs, [dict(r) for r in epochs[n_epochs:]], spe, is_current))
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
    """The helper's loop: apply each frame's new rows, draw, answer with the PNG."""
    import matplotlib.backends.backend_agg  # noqa: F401  (the slow imports, before "ready")
    import matplotlib.figure  # noqa: F401
    import PIL.Image  # noqa: F401

    _write_frame(stdout, "ready")
    runs: dict[int, dict] = {}
    while True:
        try:
            msg = _read_frame(stdin)
        except EOFError:
            return
        try:
            t0 = time.process_time()
            order = []
            for index, label, config, n_steps, new_steps, n_epochs, new_epochs, spe, is_current in msg["runs"]:
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
            png = render_png(order, figsize=msg["figsize"], dpi=msg["dpi"])
            reply = {"png": png, "cpu_s": time.process_time() - t0}
        except Exception as exc:
            runs.clear()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        _write_frame(stdout, reply)


if __name__ == "__main__":
    # Run as a script: drop this file's folder from the path so nothing in it can shadow
    # an import, and serve until the dashboard closes the pipe.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if "--serve" in sys.argv[1:]:
        _serve(sys.stdin.buffer, sys.stdout.buffer)

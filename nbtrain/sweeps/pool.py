"""The local process pool: worker processes that never import the caller's ``__main__``.

Each worker is a fresh interpreter running ``python -m nbtrain.sweeps.worker`` (a fork and
an immediate exec: torch is never forked after use), so a pool works the same from a script
with or without a main guard, ``python -c``, a script on standard input, IPython and Jupyter.
The protocol is in ``nbtrain.sweeps.worker``.

``run_pool(calls, lanes, on_result)`` runs every call ``(function, args)`` once, in the
workers of its *lane*. A lane is a list of call indices and one initializer per worker
(``None``, or ``(function, args)`` called once in the worker before its first call: the GPU
slots pin their worker to a GPU this way); each worker takes the lane's next call as it frees.
As each call ends, ``on_result(index, ok, value)`` gets its value (``ok``) or the text of what
went wrong (not ``ok``): the exception the call raised, or how its worker died (the exit code
or the signal, and the last line the worker wrote to standard error). A worker that dies is
replaced by a fresh one for the lane's remaining calls; the other calls go on.

Workers write their standard error to this process's standard error (as spawned processes
do); the pool keeps the last lines of each to explain a death. On an interrupt (or an error
in ``on_result``), calls not yet started are dropped and the function returns at once; the
calls already running finish in their workers, which then exit.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .worker import read_frame, write_frame

Call = tuple  # (function, args)
OnResult = Callable[[int, bool, Any], None]
WORKER_MODULE = "nbtrain.sweeps.worker"
TAIL_LINES = 20  # lines of a worker's standard error kept to explain its death
NATIVE_CRASHES = ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE")


@dataclass
class Lane:
    """Calls (indices) and the initializer of each of the workers that run them (see the module)."""

    calls: list[int]
    inits: list[Call | None] = field(default_factory=lambda: [None])


def death_text(pid: int, returncode: int, tail: list[str]) -> str:
    """How a worker died, for the row of the call it was running."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        cause = f"was killed by signal {-returncode} ({name})"
        if name == "SIGKILL":
            cause += ": out of memory, or killed from outside"
        elif name in NATIVE_CRASHES:
            cause += ": a crash in native code"
    else:
        cause = f"exited with code {returncode}"
    text = f"the worker process (pid {pid}) {cause} while running this task"
    last = [line for line in tail if line.strip()]
    return text + (f"; its last error output: {last[-1].strip()}" if last else "")


def _environment() -> dict:
    """The workers' environment: this one, with nbtrain's folder first on PYTHONPATH."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


class Worker:
    """One worker process, its two reader threads and the call it is running (``task``)."""

    def __init__(self, lane: int, slot: int, init: Call | None, events: queue.Queue):
        import multiprocessing.spawn

        self.lane, self.slot, self.task = lane, slot, None
        self.tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
        self.proc = subprocess.Popen(
            [multiprocessing.spawn.get_executable(), "-m", WORKER_MODULE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment(),
        )
        self._err = threading.Thread(target=self._forward_stderr, daemon=True)
        self._out = threading.Thread(target=self._read_results, args=(events,), daemon=True)
        self._err.start()
        self._out.start()
        self._send(pickle.dumps(list(sys.path)))
        self._send(pickle.dumps(init))

    def _send(self, payload: bytes) -> None:
        try:
            write_frame(self.proc.stdin, payload)
        except (BrokenPipeError, OSError):
            pass  # the worker already died: its reader thread reports the exit

    def start(self, index: int, payload: bytes) -> None:
        """Send the call at ``index`` (pickled as ``payload``)."""
        self.task = index
        self._send(payload)

    def close(self) -> None:
        """End the worker's input: it exits after its current call."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def _read_results(self, events: queue.Queue) -> None:
        while (frame := read_frame(self.proc.stdout)) is not None:
            events.put((self, frame))
        self.proc.wait()
        self._err.join(timeout=5)  # its last words, before the death is explained
        events.put((self, None))

    def _forward_stderr(self) -> None:
        target = sys.__stderr__
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            self.tail.append(line)
            if target is not None:
                try:
                    target.write(line)
                    target.flush()
                except (OSError, ValueError):
                    target = None

    def death(self) -> str:
        return death_text(self.proc.pid, self.proc.returncode, list(self.tail))


def _payloads(calls: list[Call], on_result: OnResult) -> list[bytes | None]:
    """Each call pickled; a call pickle cannot write is reported at once (None)."""
    out: list[bytes | None] = []
    for i, call in enumerate(calls):
        try:
            out.append(pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:
            on_result(i, False, f"the task could not be sent to a worker: {type(exc).__name__}: {exc}")
            out.append(None)
    return out


class _Scheduler:
    """The state of one ``run_pool`` call: queued calls per lane, the workers in each lane's slots."""

    def __init__(self, calls: list[Call], lanes: list[Lane], on_result: OnResult):
        self.lanes, self.on_result = lanes, on_result
        self.events: queue.Queue = queue.Queue()
        self.payloads = _payloads(calls, on_result)
        self.queues = [collections.deque(i for i in lane.calls if self.payloads[i] is not None) for lane in lanes]
        self.slots: list[list[Worker | None]] = [[None] * len(lane.inits) for lane in lanes]
        self.left = sum(len(q) for q in self.queues)

    def fill(self, lane: int) -> None:
        """Start a worker in each empty slot of ``lane`` while it has queued calls."""
        for s, worker in enumerate(self.slots[lane]):
            if worker is None and self.queues[lane]:
                worker = Worker(lane, s, self.lanes[lane].inits[s], self.events)
                self.slots[lane][s] = worker
                self._next(worker)

    def _next(self, worker: Worker) -> None:
        q = self.queues[worker.lane]
        if q:
            i = q.popleft()
            worker.start(i, self.payloads[i])
        else:
            worker.task = None
            worker.close()

    def handle(self, worker: Worker, frame: bytes | None) -> None:
        """One event: a worker's answer (``frame``) or its exit (None)."""
        i = worker.task
        if frame is None:  # the worker exited
            self.slots[worker.lane][worker.slot] = None
            if i is not None:
                self.left -= 1
                self.on_result(i, False, worker.death())
            self.fill(worker.lane)
            return
        try:
            status, value = pickle.loads(frame)
        except Exception as exc:
            status, value = "error", f"the task's result could not be read: {type(exc).__name__}: {exc}"
        worker.task = None
        self.left -= 1
        self.on_result(i, status == "ok", value)
        self._next(worker)

    def workers(self) -> list[Worker]:
        return [w for lane in self.slots for w in lane if w is not None]


def run_pool(calls: list[Call], lanes: list[Lane], on_result: OnResult) -> None:
    """Run every call in its lane's workers; ``on_result`` as each ends (see the module docstring)."""
    sched = _Scheduler(calls, lanes, on_result)
    finished = False
    try:
        for lane in range(len(lanes)):
            sched.fill(lane)
        while sched.left > 0:
            try:
                sched.handle(*sched.events.get(timeout=0.5))
            except queue.Empty:
                continue
        finished = True
    finally:
        for worker in sched.workers():
            worker.close()
        if finished:  # the workers exit at the end of their input: wait for them
            for worker in sched.workers():
                worker.proc.wait()


__all__ = ["Lane", "WORKER_MODULE", "death_text", "run_pool"]

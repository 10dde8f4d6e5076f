"""A local worker process: ``python -m nbtrain.sweeps.worker``, started by ``nbtrain.sweeps.pool``.

It never imports the caller's ``__main__``: the caller may be a script without a main guard,
``python -c``, a script on standard input, IPython or Jupyter, and none of that runs again
here. Functions reach the worker by reference (module and qualified name, as ``pickle`` writes
them), so what it runs must be importable from a module.

Protocol, over the process's standard input (parent to worker) and its original standard output
(worker to parent; the worker's own ``print`` output goes to standard error instead). Each
message is a *frame*: 8 bytes of little-endian length, then that many bytes of ``pickle``.

1. The parent sends ``sys.path`` (a list of str), then the initializer: ``None`` or
   ``(function, args)``, called once before the first task (``pin_gpu`` for a GPU slot).
2. Then tasks, one at a time: ``(function, args)``. For each, the worker answers
   ``("ok", value)`` or ``("error", text)``: the exception the function raised (or the one that
   kept the task from being read or its value from being sent), its type, text and the place it
   was raised.
3. At the end of its input (the parent closed the pipe) the worker exits with code 0.

Ctrl-C reaches the worker's process group too: the worker ignores SIGINT, so a task that is
running when the caller is interrupted finishes (a sweep trial still writes its ``done.json``)
and the worker then exits at the end of its input.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct("<Q")  # a frame's length


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    """Send one frame (see the module docstring)."""
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's bytes, or None at the end of the stream (a frame cut short is an end too)."""
    head = _read_exactly(stream, HEADER.size)
    if head is None:
        return None
    return _read_exactly(stream, HEADER.unpack(head)[0])


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def error_text(exc: BaseException) -> str:
    """``Type: message (at file.py:line)``: an exception as a table row shows it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _answer(out: BinaryIO, status: str, value: Any) -> None:
    try:
        payload = pickle.dumps((status, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a value pickle cannot write: say so instead
        payload = pickle.dumps(("error", f"the task's result could not be sent back: {error_text(exc)}"))
    write_frame(out, payload)


def _run(frame: bytes) -> tuple[str, Any]:
    try:
        fn, args = pickle.loads(frame)
    except Exception as exc:  # e.g. the function's module cannot be imported here
        return "error", f"the task could not be read in the worker: {error_text(exc)}"
    try:
        return "ok", fn(*args)
    except BaseException as exc:  # SystemExit and the like too: the worker reports and goes on
        return "error", error_text(exc)


def main() -> int:
    """Serve tasks until the input ends (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints, Python's and C's, go to stderr
    sys.stdout = sys.stderr
    first = read_frame(inp)
    if first is None:
        return 0
    sys.path[:] = pickle.loads(first)  # as multiprocessing's spawn does: the caller's path, then imports
    init = read_frame(inp)
    if init is None:
        return 0
    try:
        call = pickle.loads(init)
        if call is not None:
            call[0](*call[1])
    except Exception as exc:  # every task would fail the same way: answer the first task, then stop
        if read_frame(inp) is not None:
            _answer(out, "error", f"the worker's initializer failed: {error_text(exc)}")
        return 1
    while (frame := read_frame(inp)) is not None:
        try:
            _answer(out, *_run(frame))
        except (BrokenPipeError, OSError):  # the parent is gone: nobody to answer
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The plot helper process: same pictures as in-process drawing, incremental rows, fallbacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nbtrain import presets
from nbtrain.training.config import TrainConfig
from nbtrain.views.liveplot import PlotProcess, PlotProcessError, render_png

PNG = b"\x89PNG\r\n\x1a\n"


def _steps(n: int, start: int = 0) -> list[dict]:
    return [
        {"epoch": i // 10, "step": i, "loss": 1.0 / (1 + i), "grad_norm": 0.5 + 0.1 * i, "clipped": i % 3 == 0,
         "clip_factor": 1.0, "lr": 1e-5 if i < 15 else 5e-6}
        for i in range(start, n)
    ]


def _epochs(n: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "lr_start": 1e-5,
             "lr": 1e-5 if e == 0 else 5e-6, "n_steps": 10} for e in range(n)]


@pytest.fixture
def helper():
    proc = PlotProcess()
    assert proc.wait_ready(60), "the plot helper did not start"
    yield proc
    proc.close()


def test_helper_draws_the_same_png_as_in_process_as_rows_arrive(helper):
    size = (5.0, 2.0)
    a, b = presets.ROUND1, TrainConfig(grad_clip=None, scheduler="cosine_warm_restarts")
    steps_a, steps_b = _steps(25), _steps(12)
    snapshots = [
        [],
        [(1, "#1", a, steps_a[:5], [], 10, True)],
        [(1, "#1", a, steps_a[:20], _epochs(2), 10, False), (2, "#2", b, steps_b[:3], [], 10, True)],
        [(1, "#1", a, steps_a, _epochs(2), 10, False), (2, "#2", b, steps_b, _epochs(1), 10, True)],
        [(2, "#2", b, steps_b, _epochs(1), 10, True)],  # run 1 cleared
        [(1, "#1", a, steps_a[:2], [], 10, True)],  # a new run that reuses a number
    ]
    for snap in snapshots:
        assert helper.render(snap, figsize=size) == render_png(snap, figsize=size)
    assert helper.renders == len(snapshots)


def test_a_failed_draw_is_reported_and_the_helper_recovers(helper):
    bad = [(1, "#1", presets.ROUND1, [{**_steps(1)[0], "grad_norm": {"not": "a number"}}], [], 10, True)]
    with pytest.raises(PlotProcessError, match="failed to draw"):
        helper.render(bad)
    good = [(1, "#1", presets.ROUND1, _steps(4), [], 10, True)]
    assert helper.render(good, figsize=(4, 2)) == render_png(good, figsize=(4, 2))


def test_a_dead_helper_raises_and_close_is_idempotent(helper):
    helper._proc.kill()
    helper._proc.wait()
    with pytest.raises(PlotProcessError, match="not running"):
        helper.render([])
    helper.close()
    helper.close()
    assert not helper.alive


def test_the_helper_script_never_imports_torch():
    # Run the helper's module as the helper runs it and ask what it imported.
    import nbtrain.views.liveplot as lp

    code = (
        "import runpy, sys; sys.argv = ['liveplot.py']; "
        f"runpy.run_path({lp.__file__!r}, run_name='__main__'); "
        "import matplotlib.figure, PIL.Image; print('torch' in sys.modules, 'nbtrain' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_helper_that_hangs_is_killed_after_the_reply_timeout():
    import os
    import signal

    proc = PlotProcess(reply_timeout=1.0)
    try:
        assert proc.wait_ready(60)
        os.kill(proc._proc.pid, signal.SIGSTOP)  # alive but never answers
        with pytest.raises(PlotProcessError, match="stopped answering"):
            proc.render([])
        assert not proc.alive
    finally:
        proc.close()

"""Live plots and their helper process: same pictures as in-process drawing, incremental rows,
fallbacks, the run measurements of ``nbtrain.measures``, and a helper that never loads torch."""

from __future__ import annotations

import json
import subprocess

import pytest

from nbtrain import measures, presets
from nbtrain.training.config import TrainConfig
from nbtrain.views import liveplot, plotprocess
from nbtrain.views.liveplot import render_png
from nbtrain.views.plotprocess import PlotProcess, PlotProcessError

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


def test_the_helper_imports_neither_torch_nor_ipywidgets(tmp_path, monkeypatch):
    # Start the helper's interpreter as PlotProcess does, from a folder that does not hold
    # nbtrain and without PYTHONPATH; do what the helper does (its imports, a drawing with
    # the measures), then ask what it loaded and which nbtrain it found.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    snap = [(1, "#1", liveplot.plot_settings(presets.ROUND1), _steps(25), _epochs(3), 10, True)]
    probe = (
        "import json, matplotlib.backends.backend_agg, matplotlib.figure, PIL.Image, nbtrain; "
        f"plotprocess.render_png(json.loads({json.dumps(snap)!r})); "
        "print(json.dumps({'loaded': [m for m in ('torch', 'ipywidgets', 'nbtrain.measures') if m in sys.modules], "
        "'nbtrain': nbtrain.__file__}))"
    )
    out = subprocess.run(plotprocess.helper_command(probe), capture_output=True, text=True, timeout=120,
                         check=True, cwd=tmp_path)
    seen = json.loads(out.stdout)
    assert seen["loaded"] == ["nbtrain.measures"], seen
    import nbtrain

    assert seen["nbtrain"] == nbtrain.__file__  # the same package as the dashboard's


def test_the_helper_starts_from_any_folder_without_pythonpath(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(tmp_path)
    proc = PlotProcess()
    try:
        assert proc.wait_ready(60), "the plot helper did not start"
        snap = [(1, "#1", presets.ROUND1, _steps(12), _epochs(1), 10, True)]
        assert proc.render(snap, figsize=(4, 2)) == render_png(snap, figsize=(4, 2))
    finally:
        proc.close()


def test_live_plots_show_the_measured_clip_share_and_lr_cuts():
    from matplotlib.figure import Figure

    steps, epochs = _steps(30), _epochs(3)  # lr_start 1e-5 every epoch; lr 1e-5, then 5e-6, 5e-6
    axes = Figure().subplots(1, 3)
    assert liveplot._draw_run(axes, 1, "#1", presets.ROUND1, steps, epochs, 10, True) is True
    share, _ = measures.clip_fraction(clipped=[r["clipped"] for r in steps])
    clip_labels = [ln.get_label() for ln in axes[1].get_lines() if ln.get_label().startswith("clip")]
    assert clip_labels == [f"clip 2 ({share:.0%} of steps clipped)"]
    # One cut, where measures.lr_cuts finds it (epoch 1), not one per epoch below its lr_start.
    assert measures.lr_cuts([r["lr"] for r in epochs], start=1e-5) == [(1, 1e-5, 5e-6)]
    assert [t.get_text() for t in axes[2].texts] == ["1.0e-05 -> 5.0e-06"]
    assert [ln.get_xdata()[0] for ln in axes[2].get_lines() if ln.get_linestyle() == ":"] == [2]
    # No cut marks for a scheduler other than the plateau one.
    axes = Figure().subplots(1, 3)
    liveplot._draw_run(axes, 1, "#1", {"grad_clip": None, "scheduler": "none"}, steps, epochs, 10, True)
    assert len(axes[2].texts) == 0 and not [ln for ln in axes[2].get_lines() if ln.get_linestyle() == ":"]


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

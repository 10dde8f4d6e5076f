"""Live plots and their helper process: same pictures as in-process drawing, incremental rows,
a kept figure that redraws only what changed yet draws what a fresh one draws, fallbacks,
the run measurements of ``nbtrain.measures``, and a helper that never loads torch."""

from __future__ import annotations

import json
import struct
import subprocess

import pytest

from nbtrain import measures, presets
from nbtrain.training.config import TrainConfig
from nbtrain.views import livekey, livepanel, liveplot, plotprocess
from nbtrain.views.liveplot import LiveFigure, render_png
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


def _session(steps_per_epoch: int = 40, epochs: int = 4, every: int = 12) -> list[list[tuple]]:
    """Snapshots of a dashboard session, as redraws see it: an empty start; run 1 (plateau
    scheduler, clipping) growing a few rows at a time, with a spike, a clipped share that
    moves, and an LR cut after epoch 2; run 1 finished and run 2 (no clipping, another
    scheduler) growing beside it; a cleared history; run 3 reusing number 1."""
    n = steps_per_epoch * epochs
    lrs = [1e-5, 1e-5, 2e-6, 2e-6]
    steps = [{"epoch": i // steps_per_epoch, "step": i, "loss": 1.0 / (1 + 0.05 * i) + 0.1 * ((i * 7) % 5),
              "grad_norm": (20.0 if i == 70 else 0.5 + (i % 9) * 0.3), "clipped": (i * 5) % 7 < 2 + i // 60,
              "clip_factor": 1.0, "lr": lrs[i // steps_per_epoch]} for i in range(n)]
    epoch_rows = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.3 / (e + 1), "lr_start": 1e-5,
                   "lr": lrs[e], "n_steps": steps_per_epoch} for e in range(epochs)]
    other = TrainConfig(grad_clip=None, scheduler="cosine_warm_restarts")

    def upto(k):
        return steps[:k], epoch_rows[: k // steps_per_epoch]

    snaps = [[]]
    snaps += [[(1, "#1", presets.ROUND1, *upto(k), steps_per_epoch, True)] for k in range(1, n + 1, every)]
    snaps.append([(1, "#1", presets.ROUND1, steps, epoch_rows, steps_per_epoch, True)])
    done = (1, "#1", presets.ROUND1, steps, epoch_rows, steps_per_epoch, False)
    snaps += [[done, (2, "#2", other, *upto(k), steps_per_epoch, True)] for k in range(1, n // 2, every)]
    snaps += [[], [(1, "#3", presets.ROUND1, *upto(5), steps_per_epoch, True)]]
    return snaps


def test_a_kept_figure_draws_what_a_fresh_one_draws_and_redraws_only_what_changed():
    size = (9.0, 2.6)
    figure = LiveFigure(size)
    snaps = _session(every=16)
    beside = []  # frames drawn by renders of run 2 growing beside run 1 that made no new artists
    for i, snap in enumerate(snaps):
        frames, rebuilds = figure.frame_draws, figure.rebuilds
        assert figure.render(snap) == render_png(snap, figsize=size), f"snapshot {i} differs"
        if len(snap) == 2 and figure.rebuilds == rebuilds:
            beside.append(figure.frame_draws - frames)
    # The cheap paths were taken: artists made again only when what is drawn changed in kind
    # (run 1's first rows, first epoch, LR cut; run 1 finished beside run 2's first rows;
    # run 2's first epoch; run 3); while run 1's length fixes the x axis, renders redraw at
    # most one panel's frame on average; an unchanged snapshot draws no frame at all.
    assert figure.rebuilds == 6, figure.rebuilds
    assert len(beside) == 3 and sum(beside) <= len(beside), beside
    frames = figure.frame_draws
    assert figure.render(snaps[-1]) == render_png(snaps[-1], figsize=size) and figure.frame_draws == frames


def test_a_finished_run_whose_rows_change_is_drawn_again():
    # The finished run's lines sit in the panels' frames; its new rows change no limit.
    size = (6.0, 2.0)
    figure = LiveFigure(size)
    steps = _steps(40)
    changed = [{**r, "grad_norm": 1.0} if 10 <= r["step"] < 20 else r for r in steps]
    current = (2, "#2", presets.ROUND1, _steps(40), _epochs(4), 10, True)
    for rows in (steps, changed):
        snap = [(1, "#1", presets.ROUND1, rows, _epochs(4), 10, False), current]
        assert figure.render(snap) == render_png(snap, figsize=size)


def test_the_clipped_share_and_no_run_yet_and_clipping_off_are_drawn():
    size = (6.0, 2.0)
    figure = LiveFigure(size)
    figure.render([])
    assert [t.get_text() for ax in figure.axes for t in ax.texts] == ["no run yet"] * 3
    steps = _steps(30)  # every third step clipped: 33%
    low = [(1, "#1", presets.ROUND1, steps, _epochs(3), 10, True)]
    high = [(1, "#1", presets.ROUND1, [{**r, "clipped": not r["clipped"]} for r in steps], _epochs(3), 10, True)]
    pictures = [figure.render(low), figure.render(high)]  # the legend's box kept, its share rewritten
    assert pictures[0] != pictures[1] and pictures == [render_png(low, figsize=size), render_png(high, figsize=size)]
    notes = [t.get_text() for t in figure.axes[1].texts if t.get_text().startswith("clip")]
    assert notes == ["clip 2: 67% of steps clipped"]
    figure.render([(1, "#1", {"grad_clip": None, "scheduler": "none"}, steps, _epochs(3), 10, True)])
    assert [t.get_text() for t in figure.axes[1].texts] == ["clipping off"]


@pytest.fixture
def helper():
    proc = PlotProcess()
    assert proc.wait_ready(60), "the plot helper did not start"
    yield proc
    proc.close()


def test_helper_draws_the_same_png_as_in_process_as_rows_arrive(helper):
    # At the default size the helper's warmed-up figure (plotprocess.warm_figure) draws them.
    first = [(1, "#1", presets.ROUND1, _steps(5), [], 10, True)]
    assert helper.render(first) == render_png(first) and helper.work == ["rebuild"]
    assert plotprocess.warm_figure().render(first) == render_png(first)
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
    snapshots += _session(every=25)  # a session redrawn as it grows, from a cleared history
    for i, snap in enumerate(snapshots):
        assert helper.render(snap, figsize=size) == render_png(snap, figsize=size), f"snapshot {i} differs"
    assert helper.renders == len(snapshots) + 1
    assert helper.render(snapshots[-1], figsize=(4.0, 2.0)) == render_png(snapshots[-1], figsize=(4.0, 2.0))


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
        "import json, matplotlib.backends.backend_agg, matplotlib.figure, numpy, nbtrain; "
        f"plotprocess.LiveFigure().render(json.loads({json.dumps(snap)!r})); "
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
    steps, epochs = _steps(30), _epochs(3)  # lr_start 1e-5 every epoch; lr 1e-5, then 5e-6, 5e-6
    figure = LiveFigure()
    figure.render([(1, "#1", presets.ROUND1, steps, epochs, 10, True)])
    axes = figure.axes
    share, _ = measures.clip_fraction(clipped=[r["clipped"] for r in steps])
    notes = [t.get_text() for t in axes[1].texts if t.get_text().startswith("clip")]
    assert notes == [f"clip 2: {share:.0%} of steps clipped"]
    # One cut, where measures.lr_cuts finds it (epoch 1), not one per epoch below its lr_start.
    assert measures.lr_cuts([r["lr"] for r in epochs], start=1e-5) == [(1, 1e-5, 5e-6)]
    assert [t.get_text() for t in axes[2].texts] == ["1e-5 -> 5e-6"]
    assert [ln.get_xdata()[0] for ln in axes[2].get_lines() if ln.get_linestyle() == ":"] == [2]
    # No cut marks for a scheduler other than the plateau one.
    figure.render([(1, "#1", {"grad_clip": None, "scheduler": "none"}, steps, epochs, 10, True)])
    axes = figure.axes
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


# -- readable at the picture's size ---------------------------------------------------------
def _two_runs() -> list[tuple]:
    """An earlier run (constant LR 1e-5) and the current one (2e-5, cut to 2e-6 after epoch 1)."""
    current = [{**r, "lr": 2e-5 if r["epoch"] < 2 else 2e-6} for r in _steps(30)]
    epochs = [{**r, "lr_start": 2e-5 if r["epoch"] < 2 else 2e-6, "lr": 2e-5 if r["epoch"] < 1 else 2e-6}
              for r in _epochs(3)]
    earlier = [{**r, "lr": 1e-5} for r in _steps(40)]
    return [(1, "#1 lr 1e-5, clip 3, patience 3", presets.ROUND2, earlier, [{**r, "lr": 1e-5, "lr_start": 1e-5}
                                                                          for r in _epochs(4)], 10, False),
            (2, "#2 lr 2e-5, clip 2, patience 5", presets.ROUND1, current, epochs, 10, True)]


def test_the_picture_is_as_wide_as_shown_and_its_texts_are_at_least_9_pt():
    figure = LiveFigure()
    png = figure.render(_two_runs())
    width, height = struct.unpack(">II", png[16:24])
    assert width == round(liveplot.FIGSIZE[0] * liveplot.DPI) == 1000
    assert height > liveplot.FIGSIZE[1] * liveplot.DPI  # the key's rows under the panels
    for ax in figure.axes:
        texts = [ax.title, ax.xaxis.label, *ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels()]
        sizes = {t.get_text(): t.get_fontsize() for t in texts if t.get_text()}
        assert len(sizes) >= 4 and min(sizes.values()) >= 9, sizes
    key_texts = [t for legend in figure.key.legends for t in legend.get_texts()]
    assert [t.get_text() for t in key_texts[:2]] == ["#1 lr 1e-5, clip 3, patience 3", "#2 lr 2e-5, clip 2, patience 5"]
    assert min(t.get_fontsize() for t in key_texts) >= 9
    assert not any(ax.get_legend() for ax in figure.axes)  # no legend over the data


def test_the_lr_axis_is_labelled_at_the_lrs_in_use():
    figure = LiveFigure()
    figure.render(_two_runs())
    assert [t.get_text() for t in figure.axes[2].get_yticklabels()] == ["2e-6", "1e-5", "2e-5"]
    assert [t.get_text() for t in figure.axes[2].texts] == ["2e-5 -> 2e-6"]
    figure.render([(1, "#1", presets.ROUND1, _steps(12), [], 10, True)])  # a constant LR, mid-axis
    ax = figure.axes[2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1e-5"]  # (_steps's LR drops at step 15)
    low, high = ax.get_ylim()
    assert low < 1e-5 / 2 and 1e-5 * 2 < high
    assert liveplot.plot_settings(presets.ROUND1) and livepanel.lr_text(3.16e-4) == "3.16e-4"
    assert livepanel.lr_text(2e-05) == "2e-5" and livepanel.lr_text(0.5) == "5e-1"


def test_epochs_are_numbered_from_0_on_the_x_axis():
    figure = LiveFigure()
    unplanned = {"grad_clip": 2.0, "scheduler": "plateau"}  # no epochs: the axis ends with the last epoch begun
    figure.render([(1, "#1", unplanned, _steps(25), _epochs(2), 10, True)])  # in epoch 2 of 0-2
    for ax in figure.axes:
        assert ax.get_xlim() == (0.0, 3.0)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
        assert list(ax.get_xticks()) == [0.5, 1.5, 2.5]  # mid-span; the spans' ends are the grid
        assert list(ax.get_xticks(minor=True)) == [0, 1, 2, 3]
    val = [ln for ln in figure.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert [list(ln.get_xdata()) for ln in val] == [[0.5, 1.5]]  # epoch 0's validation loss above "0"
    # The config's epochs: the axis spans them from the first redraw (epochs 0-6), and a run
    # that goes on longer than any config asks widens it.
    assert presets.ROUND1.epochs == 7
    for k in (25, 55):
        figure.render([(1, "#1", presets.ROUND1, _steps(k), _epochs(k // 10), 10, True)])
        for ax in figure.axes:
            assert ax.get_xlim() == (0.0, 7.0)
            assert [t.get_text() for t in ax.get_xticklabels()] == [str(e) for e in range(7)]
    longer = [(1, "#1", presets.ROUND1, _steps(85), _epochs(8), 10, True)]
    figure.render(longer)
    assert [ax.get_xlim() for ax in figure.axes] == [(0.0, 9.0)] * 3
    assert figure.render(longer) == render_png(longer)


def test_the_key_names_each_run_and_only_the_line_styles_shown():
    figure = LiveFigure((6.0, 2.0))
    snap = _two_runs()
    figure.render(snap)
    runs, styles = livekey.key_entries([liveplot.run_curves(*item) for item in snap])
    assert [r[:2] for r in runs] == [(1, "#1 lr 1e-5, clip 3, patience 3"), (2, "#2 lr 2e-5, clip 2, patience 5")]
    assert styles == ("step", "train", "val", "clip", "cut", "faint")
    draws = figure.key.draws
    grown = [snap[0], (*snap[1][:3], _steps(31), *snap[1][4:])]
    figure.render(grown)  # one more step: the same key, not drawn again
    assert figure.key.draws == draws
    plain = [(1, "#1", {"grad_clip": None, "scheduler": "none"}, _steps(5), [], 10, True)]
    assert livekey.key_entries([liveplot.run_curves(*item) for item in plain])[1] == ("step",)
    assert figure.render(plain) == render_png(plain, figsize=(6.0, 2.0))
    assert figure.key.draws == draws + 2  # its runs and its styles: both strips new
    figure.render(grown)  # both strips seen before: kept, not drawn again
    assert figure.key.draws == draws + 2 and figure.render(grown) == render_png(grown, figsize=(6.0, 2.0))


def test_the_helper_runs_at_a_lower_priority_than_the_kernel():
    import os

    proc = PlotProcess()
    try:
        assert proc.wait_ready(60), "the plot helper did not start"
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, proc._proc.pid) == min(19, ours + plotprocess.NICENESS)
        assert plotprocess.NICENESS > 0
    finally:
        proc.close()


def test_limits_change_rarely_and_the_live_runs_new_artists_keep_the_frame():
    from nbtrain.views import liveaxes

    # Linear limits to 1, 1.5, 2, 3, 4, 6, 8 times a power of ten, from 0 when the data reach
    # down to half the top; a narrow band far from 0 keeps the finer steps; log axes to 1-2-5.
    assert liveaxes.round_out(1.18, 1.34, log=False) == (1.0, 1.5)
    assert liveaxes.round_out(0.05, 1.8, log=False) == (0.0, 2.0)
    assert liveaxes.round_out(0.05, 1.4, log=False) == (0.0, 1.5)
    assert liveaxes.round_out(-3.0, -1.0, log=False) == (-3.0, -1.0)
    low, high = liveaxes.round_out(100.1, 100.3, log=False)
    assert 100.0 < low <= 100.1 and 100.3 <= high < 100.4
    assert liveaxes.round_out(0.0562, 5.6, log=True) == (0.05, 10.0)
    assert liveaxes.round_out(0.3, 1.9, log=True) == (0.2, 2.0)
    assert liveaxes.round_out(2.0, 2.0, log=True) == (2.0, 2.0)  # nothing to round
    # A current run's first epoch makes its artists again (its epoch means appear), but the
    # frame (finished runs first, axes) is not made again for it.
    figure = LiveFigure((6.0, 2.0))
    done = (1, "#1", presets.ROUND1, _steps(40), _epochs(4), 10, False)
    figure.render([done, (2, "#2", presets.ROUND1, _steps(8), [], 10, True)])
    generations, rebuilds = [p.generation for p in figure._panels], figure.rebuilds
    snap = [done, (2, "#2", presets.ROUND1, _steps(12), _epochs(1), 10, True)]
    assert figure.render(snap) == render_png(snap, figsize=(6.0, 2.0))
    assert figure.rebuilds == rebuilds + 1 and [p.generation for p in figure._panels] == generations

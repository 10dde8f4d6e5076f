"""Plots: check what was drawn (Agg backend; every figure closed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from histories import HEALTHY_CONFIG, HEALTHY_VAL, healthy_history, make_history, seed_frame  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from nbtrain.views.labels import LEGEND_FONTSIZE, lr_ticks  # noqa: E402
from nbtrain.views.overlay import coinciding, off_scale  # noqa: E402

from nbtrain.views.plots import (  # noqa: E402
    plot_clip_fraction,
    plot_grad_norms,
    plot_losses,
    plot_lr,
    plot_overlay,
    plot_run,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labels(ax) -> list[str]:
    return [ln.get_label() for ln in ax.get_lines()]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def legend_sizes(ax) -> list[float]:
    return [t.get_fontsize() for t in ax.get_legend().get_texts()]


def integer_ticks(ax) -> bool:
    ax.figure.canvas.draw()
    return all(float(t).is_integer() for t in ax.get_xticks())


def test_plot_losses_marks_the_best_epoch():
    fig, ax = plt.subplots()
    assert plot_losses(healthy_history(), ax=ax) is ax
    assert labels(ax) == ["training", "validation"]
    assert texts(ax) == ["best 0.51 (epoch 11)"]
    assert ax.get_xlabel() == "epoch (0 = first)" and integer_ticks(ax)
    assert ax.get_ylabel() == "loss"  # not the reference experiment: no units claimed
    assert ax.get_title() == "Training and validation loss"
    assert min(legend_sizes(ax)) >= 9
    seed_ax = plot_losses(seed_frame())
    assert labels(seed_ax) == ["validation"]
    assert texts(seed_ax) == ["best 0.5869 (epoch 1)"]
    assert seed_ax.figure is not fig  # a new figure only when no ax is given


def test_loss_units_of_the_reference_experiment():
    h = healthy_history()
    h.meta["experiment"] = "reference"
    assert plot_losses(h).get_ylabel() == "loss (MSE, normalized units)"
    h.meta["config"] = {**h.meta["config"], "normalize": False}
    assert plot_losses(h).get_ylabel() == "loss (MSE, raw units)"


def test_plot_grad_norms_per_step_with_band_and_clip_line():
    h = healthy_history()
    ax = plot_grad_norms(h)  # clip from the stored config
    step_line = ax.get_lines()[0]
    assert len(step_line.get_xdata()) == len(h.steps)
    clip_line = [ln for ln in ax.get_lines() if ln.get_label().startswith("clip threshold")]
    assert len(clip_line) == 1 and list(clip_line[0].get_ydata()) == [5.0, 5.0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(h.epochs)
    assert ax.get_ylabel() == "pre-clip gradient norm (L2)" and ax.get_xlabel() == "optimizer step"
    assert min(legend_sizes(ax)) >= 9
    ax2 = plot_grad_norms(h, clip=2.0, log=True)
    assert [list(ln.get_ydata()) for ln in ax2.get_lines() if ln.get_label().startswith("clip")] == [[2.0, 2.0]]
    assert ax2.get_yscale() == "log"


def test_plot_grad_norms_from_epoch_rows():
    ax = plot_grad_norms(seed_frame(), clip=2.0)
    assert labels(ax) == ["largest", "clip threshold 2"]
    assert list(ax.get_lines()[0].get_ydata()) == [2, 6, 7, 14, 16, 18]
    assert ax.get_xlabel() == "epoch (0 = first)" and integer_ticks(ax)
    with pytest.raises(ValueError, match="clip must be a positive number or None, got -1"):
        plot_grad_norms(seed_frame(), clip=-1)


def test_plot_lr_marks_each_cut_and_ticks_the_lrs_used():
    h = healthy_history()
    ax = plot_lr(h)
    assert texts(ax) == ["epoch 7: 1e-3 → 1e-4"]
    cut_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in cut_lines] == [160]  # first step of epoch 8
    assert ax.get_yscale() == "log"
    ax.figure.canvas.draw()
    assert list(ax.get_yticks()) == pytest.approx([1e-4, 1e-3])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1e-4", "1e-3"]
    assert ax.get_ylabel() == "learning rate"
    epoch_ax = plot_lr(h.to_dataframe())
    assert texts(epoch_ax) == ["epoch 7: 1e-3 → 1e-4"]
    flat = plot_lr(seed_frame())
    assert texts(flat) == []
    flat.figure.canvas.draw()
    assert [t.get_text() for t in flat.get_yticklabels()] == ["2e-5"]  # a tick at the one LR used


def test_lr_ticks_keep_few_values_and_spread_many():
    assert lr_ticks([2e-5, 2e-5, 2e-6, float("nan"), 0, None]) == pytest.approx([2e-6, 2e-5])
    smooth = list(np.geomspace(1e-5, 1e-3, 50))
    ticks = lr_ticks(smooth, first=1e-3)
    assert len(ticks) <= 6 and ticks[0] == pytest.approx(1e-5) and ticks[-1] == pytest.approx(1e-3)


def test_plot_clip_fraction():
    h = healthy_history()
    ax = plot_clip_fraction(h)
    assert len(ax.patches) == len(h.epochs)
    assert ax.patches[3].get_height() == pytest.approx(100 / 20)
    assert [list(ln.get_ydata()) for ln in ax.get_lines()] == [[50, 50]]
    assert ax.get_ylabel() == "steps clipped (% of the epoch's steps)" and integer_ticks(ax)


def test_plot_overlay():
    ax = plot_overlay({"round 1": seed_frame(), "healthy": healthy_history()})
    assert labels(ax) == ["round 1", "healthy"]
    assert ax.get_ylabel() == "validation loss" and ax.get_title() == "Validation loss"
    assert ax.get_xlabel() == "epoch (0 = first)" and integer_ticks(ax)
    assert ax.right_axis is None and min(legend_sizes(ax)) >= LEGEND_FONTSIZE >= 9
    assert [ln.get_marker() for ln in ax.get_lines()] == ["o", "s"]  # each run its own marker
    with pytest.raises(ValueError, match="metric 'accuracy' is not a column"):
        plot_overlay({"a": seed_frame()}, metric="accuracy")
    with pytest.raises(ValueError, match="histories must be a non-empty dict"):
        plot_overlay({})
    with pytest.raises(ValueError, match="legend_at must be one of .*got 'top'"):
        plot_overlay({"a": seed_frame()}, legend_at="top")
    with pytest.raises(ValueError, match="scale_ratio must be a number > 1, got 0.5"):
        plot_overlay({"a": seed_frame()}, scale_ratio=0.5)


def scaled(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = frame.copy()
    out["val_loss"] = out["val_loss"] * factor
    return out


def test_overlay_puts_a_run_far_off_the_others_scale_on_its_own_axis():
    runs = {"a": seed_frame(), "b": scaled(seed_frame(), 1.1), "c": scaled(seed_frame(), 0.9),
            "raw": scaled(seed_frame(), 100.0)}
    ax = plot_overlay(runs)
    right = ax.right_axis
    assert right is not None and labels(ax) == ["a", "b", "c"]
    assert [ln.get_label() for ln in right.get_lines()] == ["raw (right axis, 100× the others)"]
    assert right.get_ylabel() == "raw"
    ymin, ymax = ax.get_ylim()
    assert ymax < 2  # the left axis keeps the others' scale, not the raw run's
    assert len(ax.get_legend().get_texts()) == 4  # one legend for both axes
    # two runs, far apart: the first one listed sets the scale
    two = plot_overlay({"first": seed_frame(), "second": scaled(seed_frame(), 50.0)})
    assert [ln.get_label() for ln in two.right_axis.get_lines()] == ["second (right axis, 50× the others)"]
    # percentages share one 0-100 scale: never split
    frame = seed_frame().assign(clip_fraction=[0.0, 0.0, 0.01, 0.02, 0.02, 0.03])
    other = seed_frame().assign(clip_fraction=[1.0] * 6)
    pct = plot_overlay({"a": frame, "b": other}, metric="clip_fraction")
    assert pct.right_axis is None and pct.get_ylim() == (0, 100)
    assert list(pct.get_lines()[1].get_ydata()) == [100.0] * 6


def test_off_scale_rule():
    assert off_scale({"a": 1.0, "b": 1.2, "c": 0.9, "d": 12.0}) == {"d": pytest.approx(12.0)}
    assert off_scale({"a": 1.0, "b": 9.0}) == {}  # within 10x
    assert off_scale({"a": 1.0, "b": None, "c": 0.0}) == {}  # nothing to compare
    assert set(off_scale({"a": 1.0, "b": 1.0, "c": 0.05})) == {"c"}  # far below counts too


def test_overlay_tells_coinciding_curves_apart():
    runs = {"round 2": seed_frame(), "accum_2": seed_frame(), "close": scaled(seed_frame(), 1.0005),
            "apart": scaled(seed_frame(), 0.8)}
    ax = plot_overlay(runs)
    assert labels(ax) == ["round 2", "accum_2 (same as round 2)", "close (on top of round 2)", "apart"]
    styles = {(ln.get_marker(), ln.get_linestyle()) for ln in ax.get_lines()}
    assert len(styles) == 4
    x = np.arange(3.0)
    assert coinciding({"a": (x, np.ones(3)), "b": (x, np.ones(3) * 2)}, span=1.0) == {}


def test_many_runs_put_the_legend_outside_the_data():
    runs = {f"run {i}": scaled(seed_frame(), 1 + 0.05 * i) for i in range(6)}
    ax = plot_overlay(runs)
    ax.figure.canvas.draw()
    box = ax.get_legend().get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1  # right of the axes
    few = plot_overlay({"a": seed_frame()})
    few.figure.canvas.draw()
    assert few.get_legend().get_window_extent().x1 <= few.get_window_extent().x1


def test_plot_run_draws_the_four_views_of_one_run():
    fig = plot_run(healthy_history(), HEALTHY_CONFIG)
    assert len(fig.axes) == 4
    assert fig._suptitle.get_text() == "healthy: lr 1e-3, clip 5, patience 2"
    assert [ax.get_title() for ax in fig.axes] == ["Training and validation loss", "Gradient norm before clipping",
                                                   "Learning rate (cuts marked)", "Clipping"]
    cosine = HEALTHY_CONFIG.replace(scheduler="cosine_warm_restarts", grad_clip=None, name="")
    h = make_history(HEALTHY_VAL, config=cosine, lr=[1e-3] * len(HEALTHY_VAL))
    assert plot_run(h, cosine)._suptitle.get_text().endswith("lr 1e-3, no clipping, cosine warm restarts")

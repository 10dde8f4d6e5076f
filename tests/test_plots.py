"""Plots: check what was drawn (Agg backend; every figure closed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from histories import HEALTHY_CONFIG, healthy_history, seed_frame  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

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


def test_plot_losses_marks_the_best_epoch():
    fig, ax = plt.subplots()
    assert plot_losses(healthy_history(), ax=ax) is ax
    assert labels(ax) == ["train", "val"]
    assert texts(ax) == ["best 0.51 (epoch 11)"]
    seed_ax = plot_losses(seed_frame())
    assert labels(seed_ax) == ["val"]
    assert texts(seed_ax) == ["best 0.5869 (epoch 1)"]
    assert seed_ax.figure is not fig  # a new figure only when no ax is given


def test_plot_grad_norms_per_step_with_band_and_clip_line():
    h = healthy_history()
    ax = plot_grad_norms(h)  # clip from the stored config
    step_line = ax.get_lines()[0]
    assert len(step_line.get_xdata()) == len(h.steps)
    clip_line = [ln for ln in ax.get_lines() if ln.get_label().startswith("clip threshold")]
    assert len(clip_line) == 1 and list(clip_line[0].get_ydata()) == [5.0, 5.0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(h.epochs)
    ax2 = plot_grad_norms(h, clip=2.0, log=True)
    assert [list(ln.get_ydata()) for ln in ax2.get_lines() if ln.get_label().startswith("clip")] == [[2.0, 2.0]]
    assert ax2.get_yscale() == "log"


def test_plot_grad_norms_from_epoch_rows():
    ax = plot_grad_norms(seed_frame(), clip=2.0)
    assert labels(ax) == ["max", "clip threshold 2"]
    assert list(ax.get_lines()[0].get_ydata()) == [2, 6, 7, 14, 16, 18]
    with pytest.raises(ValueError, match="clip must be a positive number or None, got -1"):
        plot_grad_norms(seed_frame(), clip=-1)


def test_plot_lr_marks_each_cut():
    h = healthy_history()
    ax = plot_lr(h)
    assert texts(ax) == ["epoch 7: 0.001 → 0.0001"]
    cut_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in cut_lines] == [160]  # first step of epoch 8
    assert ax.get_yscale() == "log"
    epoch_ax = plot_lr(h.to_dataframe())
    assert texts(epoch_ax) == ["epoch 7: 0.001 → 0.0001"]
    assert texts(plot_lr(seed_frame())) == []


def test_plot_clip_fraction():
    h = healthy_history()
    ax = plot_clip_fraction(h)
    assert len(ax.patches) == len(h.epochs)
    assert ax.patches[3].get_height() == pytest.approx(100 / 20)
    assert [list(ln.get_ydata()) for ln in ax.get_lines()] == [[50, 50]]


def test_plot_overlay():
    ax = plot_overlay({"round 1": seed_frame(), "healthy": healthy_history()})
    assert labels(ax) == ["round 1", "healthy"]
    assert ax.get_ylabel() == "val_loss"
    with pytest.raises(ValueError, match="metric 'accuracy' is not a column"):
        plot_overlay({"a": seed_frame()}, metric="accuracy")
    with pytest.raises(ValueError, match="histories must be a non-empty dict"):
        plot_overlay({})


def test_plot_run_draws_the_four_views_of_one_run():
    fig = plot_run(healthy_history(), HEALTHY_CONFIG)
    assert len(fig.axes) == 4
    assert fig._suptitle.get_text() == "healthy"
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Gradient norms", "Learning rate", "Clipping"]

"""The demo's pieces: the verdict written from the numbers, the 100-column table, the summary
figure, and the one epoch numbering of the log lines."""

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from torch.utils.data import TensorDataset

from nbtrain import TrainConfig, Trainer, presets, train
from nbtrain.demo.outcome import outcome
from nbtrain.demo.runner import fill, settings_text
from nbtrain.demo.table import WIDTH, console_table, markdown_table, table_cells
from nbtrain.demo.verdict import verdict
from nbtrain.training.records import epoch_label, epoch_line
from nbtrain.views.rounds_figure import HALF_LABEL, PANEL_TITLES, plot_rounds

from tasks import make_mlp, make_regression

matplotlib.use("Agg")

EPOCHS = 7


def _history(val, clipped, p50, lr, train_loss=None, cut_at=None, n_steps=500):
    """Epoch rows of a run (no step rows): ``clipped`` a share per epoch (or one for all);
    with ``cut_at``, the LR drops tenfold after that epoch."""
    rows = []
    for e, v in enumerate(val):
        share = clipped[e] if isinstance(clipped, (list, tuple)) else clipped
        start = lr if cut_at is None or e <= cut_at else lr / 10
        after = lr / 10 if cut_at is not None and e >= cut_at else lr
        rows.append(dict(epoch=e, train_loss=(train_loss or val)[e] * 0.9, val_loss=v, clip_fraction=share,
                         n_steps=n_steps, grad_norm_p50=p50[e], grad_norm_p90=2 * p50[e], grad_norm_max=4 * p50[e],
                         lr=after, lr_start=start))
    return pd.DataFrame(rows)


ROUND1_VAL = [0.91, 0.63, 0.42, 0.42, 0.41, 0.47, 0.47]  # best 0.41 at epoch 4, then rises
ROUND2_FALLING = [1.0, 0.9, 0.79, 0.62, 0.51, 0.45, 0.43]  # best at the last epoch: still falling
ROUND2_BETTER = [0.8, 0.5, 0.36, 0.35, 0.33, 0.34, 0.35]  # best 0.33 at epoch 4
GROWING = [0.5, 1.0, 1.5, 1.8, 1.9, 2.0, 2.0]


def _round1():
    return outcome("round1", _history(ROUND1_VAL, 0.3, GROWING, 2e-5), presets.ROUND1)


def test_verdict_of_a_lower_lr_that_tamed_clipping_but_learned_slower():
    after = outcome("round2", _history(ROUND2_FALLING, 0.03, GROWING, 1e-5), presets.ROUND2)
    text = verdict(_round1(), after)
    assert text.startswith("Against round1, round2 changed the learning rate from 2e-5 to 1e-5, the clip "
                           "threshold from 2 to 3 and the plateau patience from 5 to 3.")
    assert "cut the share of clipped steps from 30% to 3%" in text
    assert "raised the best validation loss from 0.4100 to 0.4300" in text
    assert "bottomed out for round1 at epoch 4 (of 0-6)" in text
    assert "was still falling for round2 at epoch 6 (of 0-6), its last" in text
    assert "round2 never cut its LR, so its patience of 3 never acted" in text
    assert ("the round with the lower learning rate has the worse best validation loss, so lowering it further "
            "points the wrong way; try rates above round1's 2e-5") in text
    assert "give round2 more epochs" in text
    assert "growth of the median pre-clip norm (4.00× vs 4.00×)" in text  # same norms: about the same
    assert "Each round ran from seed 0 only" in text


def test_verdict_of_a_round_that_won_and_one_that_still_clips_heavily():
    before = _round1()
    better = outcome("round2", _history(ROUND2_BETTER, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], GROWING, 1e-5),
                     presets.ROUND2)
    text = verdict(before, better)
    assert "cut the best validation loss from 0.4100 to 0.3300" in text
    assert "raised the share of clipped steps from 30% to 40%" in text
    assert "bottomed out for round2 at epoch 4 (of 0-6)" in text
    assert "keep round2's settings and keep the weights of its best epoch (epoch 4)" in text
    assert "Clipping still caught 70% of round2's last-epoch steps: try a warmup or a lower learning rate." in text
    assert "points the wrong way" not in text
    # a higher LR that did worse is told apart from a lower one
    higher = outcome("round2", _history(ROUND2_FALLING, 0.03, GROWING, 4e-5), presets.ROUND2.replace(lr=4e-5))
    assert "the round with the higher learning rate has the worse best validation loss; try rates between 2e-5 " \
        "and 4e-5" in verdict(before, higher)
    other_seed = outcome("round2", _history(ROUND2_FALLING, 0.03, GROWING, 1e-5), presets.ROUND2.replace(seed=1))
    assert verdict(before, other_seed).endswith("The rounds ran from different seeds (0 and 1), one run each: check "
                                                "more seeds before relying on this.")
    # the same settings: no change is claimed; the same numbers: nothing is fixed or made worse
    same = verdict(before, outcome("again", _history(ROUND1_VAL, 0.3, GROWING, 2e-5), presets.ROUND1))
    assert same.startswith("Against round1, again used the same settings.")
    assert " cut " not in same and "raised" not in same
    with pytest.raises(TypeError, match="after must be an Outcome"):
        verdict(before, "round2")


def test_table_fits_100_columns_with_one_format_per_column():
    worst = outcome("round2", _history([53.27, 41.5, 40.1, 39.9, 40.2, 41.0, 44.4], [0.5, 1, 1, 1, 1, 1, 1],
                                       [0.4, 1, 2, 3, 4, 5, 6], 2.5e-5, cut_at=5), presets.ROUND2.replace(lr=2.5e-5))
    outcomes = [_round1(), worst]
    text = console_table(outcomes)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    headers, rows = table_cells(outcomes)
    assert headers == ["run", "lr", "clip", "patience", "best val", "best at", "last val", "clipped", "growth",
                       "LR cuts"]
    assert len(set(headers)) == len(headers) and "final lr" not in headers  # the LR once
    cols = dict(zip(headers, zip(*rows)))
    assert cols["lr"] == ("2e-5", "2.5e-5")
    # losses: one number of decimals per column, 4 significant figures for its largest value
    assert cols["best val"] == ("0.41", "39.90") and cols["last val"] == ("0.47", "44.40")
    assert table_cells([_round1(), _round1()])[1][0][4] == "0.4100"
    assert [r[4] for r in table_cells([_round1(), outcome("b", _history([1.007] * 7, 0, GROWING, 1e-5))])[1]] == \
        ["0.410", "1.007"]
    assert cols["best at"] == ("4", "3") and cols["patience"] == ("5", "3")  # counts as integers
    assert all(re.fullmatch(r"\d+%", c) for c in cols["clipped"])
    assert all(re.fullmatch(r"\d+\.\d+×", c) for c in cols["growth"])
    assert cols["LR cuts"] == ("0", "1 → 2.5e-6")  # a cut names the final LR
    lines = text.splitlines()
    assert lines[0].split() == ["run", "lr", "clip", "patience", "best", "val", "best", "at", "last", "val",
                                "clipped", "growth", "LR", "cuts"]
    assert lines[1].split()[:3] == ["round1", "2e-5", "2"]
    md = markdown_table(outcomes).splitlines()
    assert md[0] == "| " + " | ".join(headers) + " |"
    assert md[3] == "| " + " | ".join(rows[1]) + " |"


def test_summary_figure_has_four_labelled_panels_for_both_rounds(tmp_path):
    runs = {"round1": _history(ROUND1_VAL, 0.3, GROWING, 2e-5),
            "round2": _history(ROUND2_FALLING, 0.03, GROWING, 2e-5)}
    for name, h in runs.items():  # the clip thresholds come from each run's config
        runs[name] = type("Run", (), {"history": h, "config": TrainConfig(grad_clip=2.0 if name == "round1" else 3.0)})
    png = tmp_path / "summary.png"
    fig = plot_rounds(runs, png=png)
    assert png.stat().st_size > 10_000
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == list(PANEL_TITLES)
    for ax in axes:
        assert ax.get_xlabel() == "epoch (0 = first)" and ax.get_ylabel()
        assert ax.get_legend() is not None
    loss, norms, clipped, lr = axes
    assert {t.get_text() for t in loss.get_legend().get_texts()} >= {
        "round1 training", "round1 validation", "round2 training", "round2 validation"}
    flat = {tuple(np.unique(line.get_ydata())) for line in norms.get_lines()}
    assert (2.0,) in flat and (3.0,) in flat  # each round's own clip line
    assert len(clipped.patches) == 2 * EPOCHS
    assert HALF_LABEL in [t.get_text() for t in clipped.get_legend().get_texts()]
    assert lr.get_yscale() == "log" and list(lr.get_yticks()) == [2e-5]
    assert [t.get_text() for t in lr.get_legend().get_texts()] == ["round1", "round2 (same as round1)"]
    assert fig._suptitle.get_text() == "round1 vs round2 (epochs 0-6)"
    with pytest.raises(ValueError, match="runs must be a non-empty dict"):
        plot_rounds({})


def test_epoch_line_names_the_epoch_and_its_range():
    row = dict(epoch=3, train_loss=0.4474, val_loss=0.4199, lr=2e-5, grad_norm_p50=1.8, grad_norm_p90=3.11,
               grad_norm_max=7.03, clip_fraction=0.41, epoch_time_s=2.2)
    assert epoch_line(row, 7) == ("epoch 3 (of 0-6): train 0.4474  val 0.4199  lr 2e-05  grad norm p50 1.80 p90 3.11 "
                                  "max 7.03  clipped 41%  (2.2 s)")
    assert epoch_label(0, 1) == "epoch 0 (of 0-0)"
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        epoch_label(0, 0)


def test_trainer_log_lines_count_from_0_with_the_run_range():
    x, y = make_regression(32)
    data = TensorDataset(x, y), TensorDataset(x, y)
    lines = []
    trainer_run = train(TrainConfig(lr=1e-2, epochs=2, batch_size=16), make_mlp(), *data, sink=lines.append)
    assert [ln.split(":")[0] for ln in lines if ln.startswith("epoch")] == ["epoch 0 (of 0-1)", "epoch 1 (of 0-1)"]
    assert trainer_run.status == "completed"
    # a run continued past its config's epochs names the range it now runs to
    lines.clear()
    trainer = Trainer(TrainConfig(lr=1e-2, epochs=2, batch_size=16), make_mlp(), *data, sink=lines.append)
    trainer.fit()
    trainer.fit(epochs=3)
    assert [ln.split(":")[0] for ln in lines if ln.startswith("epoch")] == [
        "epoch 0 (of 0-1)", "epoch 1 (of 0-1)", "epoch 2 (of 0-2)"]


def test_console_text_keeps_epoch_numbers_on_one_line():
    text = ("Validation loss bottomed out for round1 at epoch 4 (of 0-6) and was still falling for round2 at "
            "epoch 6 (of 0-6), its last. ") * 4
    for width in range(30, 101, 7):
        wrapped = fill(text, width)
        assert wrapped.count("epoch 4 (of 0-6)") == 4 and wrapped.count("epoch 6 (of 0-6)") == 4, width
    assert settings_text(presets.ROUND2) == "lr 1e-5, clip 3, patience 3, epochs 0-6, seed 0"

"""Evaluation points, not epochs: logged vs NaN cells, step windows, the run's own units, paths."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
from histories import HEALTHY_CONFIG, HEALTHY_VAL, growing_norms, healthy_history, hf_history, make_history

from nbtrain import History
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.findings import GRADIENT_GROWTH, LR_NOT_ADAPTING, VAL_FLUCTUATING
from nbtrain.diagnosis.run_data import RunData, as_run_data
from nbtrain.diagnosis.units import Units

NAN = float("nan")


# -- which cells were logged ------------------------------------------------------------------
def test_absent_is_not_logged_and_nan_is_a_logged_value():
    h = History(steps=[{"step": 1, "loss": 1.0}, {"step": 2, "loss": NAN, "grad_norm": 2.0}, {"step": 3}])
    data = as_run_data(h)
    assert data.logged("loss", "step").tolist() == [True, True, False]
    assert data.logged("grad_norm", "step").tolist() == [False, True, False]
    assert data.logged("nope", "step").tolist() == [False, False, False]
    assert np.isnan(data.col("loss", "step")[1:]).all()
    rows, values = data.step_values("grad_norm")
    assert rows.tolist() == [1] and values.tolist() == [2.0]
    frame = as_run_data({"steps": h.to_dataframe("step"), "epochs": []})  # a DataFrame: NaN stays a value
    assert frame.logged("loss", "step").tolist() == [True, True, True]
    with pytest.raises(ValueError, match="level must be 'epoch' or 'step', got 'stepz'"):
        data.logged("loss", "stepz")


def test_a_column_never_logged_is_missing():
    h = History(epochs=[{"epoch": 0, "val_loss": 1.0}, {"epoch": 1, "val_loss": 0.9}])
    assert as_run_data(h).col("train_loss") is None
    h.epochs[0]["train_loss"] = NAN  # logged once, as NaN: a column with a NaN value
    assert as_run_data(h).col("train_loss") is not None


# -- evaluation windows -------------------------------------------------------------------------
def test_step_statistics_come_from_each_evaluation_window():
    h = hf_history(n_steps=1000, log_every=10, eval_every=200)
    data = as_run_data(h)
    assert data.unit == "step" and data.grouping == "step" and data.epoch_numbers == [200, 400, 600, 800, 1000]
    window = [r for r in h.steps if 200 < r["step"] <= 400]
    assert data.epochs["n_steps"][1] == len(window) == 20
    assert data.epochs["train_loss"][1] == pytest.approx(np.mean([r["loss"] for r in window]))
    assert data.epochs["grad_norm_p90"][1] == pytest.approx(np.percentile([r["grad_norm"] for r in window], 90))
    assert data.epochs["lr_start"][1] == window[0]["lr"]
    assert data.epochs["lr"][0] == window[0]["lr"]  # in force after the first evaluation
    assert data.norms_by_epoch()[400] == [r["grad_norm"] for r in window]
    cut = data.upto(400)
    assert cut.epoch_numbers == [200, 400] and len(cut.steps) == 40


def test_nbtrain_runs_still_group_steps_by_epoch():
    data = as_run_data(healthy_history())
    assert data.unit == "epoch" and data.grouping == "epoch" and data.epoch_numbers == list(range(12))
    assert data.positions == [float(e) for e in range(12)]


def test_units_name_points_in_the_runs_own_words():
    u = Units("step", (1000, 2000, 3000, 4000))
    assert u.at(2000) == "the evaluation at step 2,000" and u.noun == "evaluation"
    assert u.span([2000, 3000, 4000]) == "the 3 evaluations at steps 2,000-4,000"
    assert u.span([1000, 3000]) == "the evaluations at steps 1,000 and 3,000"
    assert u.names([2000, 3000, 4000]) == "steps 2,000-4,000"
    assert u.future(5) == 6000 and u.end_of_future(5) == "the evaluation at step 6,000"
    assert Units("step", (1000, 2500, 3000)).end_of_future(4) == "the 2nd evaluation from now"
    e = Units("epoch", (0, 1, 2, 3))
    assert (e.at(3), e.span([1, 2, 3]), e.end_of_future(7), e.count(2)) == ("epoch 3", "epochs 1-3", "the end of epoch 7",
                                                                           "2 epochs")
    assert Units("epoch", (0.5, 1.0, 1.5)).at(1.5) == "the evaluation at epoch 1.5"
    assert Units("index", (1, 2, 3)).at(2) == "evaluation 2"


def test_fractional_epochs_are_named_by_step_when_steps_are_known():
    h = History(epochs=[{"epoch": i / 4, "step": 50 * i, "val_loss": 1.0} for i in range(1, 5)])
    assert as_run_data(h).unit == "step"
    h = History(epochs=[{"epoch": i / 4, "val_loss": 1.0} for i in range(1, 5)])
    data = as_run_data(h)
    assert data.unit == "epoch" and data.epoch_numbers == [0.25, 0.5, 0.75, 1]
    assert data.units().at(0.75) == "the evaluation at epoch 0.75"


def test_reports_speak_the_runs_units():
    val = [1.0, 0.8, 0.81, 0.79995, 0.805, 0.803]
    steps = [{"step": s, "loss": 1.0 - s / 20000, "grad_norm": 1.0 + (s % 7) / 10, "lr": 1e-3} for s in range(1, 6001)]
    evals = [{"step": 1000 * (i + 1), "val_loss": v} for i, v in enumerate(val)]
    h = History(steps=steps, epochs=evals, meta={"evaluation_unit": "step"})
    d = diagnose(h, {"scheduler": "plateau", "scheduler_patience": 4, "lr": 1e-3, "grad_clip": None})
    assert {LR_NOT_ADAPTING, VAL_FLUCTUATING} <= set(d.codes)
    f = d.get(LR_NOT_ADAPTING)
    assert "(0.8, the evaluation at step 2,000) for 4 evaluations" in f.problem
    assert f.evidence["best_epoch"] == 2000 and f.evidence["next_cut_epoch"] == 7000
    assert "the first cut comes at the evaluation at step 7,000" in " ".join(f.evidence_text)
    md = d.to_markdown()
    assert "epoch 3" not in md and "the evaluation at step 4,000" in md


def test_gradient_growth_over_evaluation_points():
    norms = [v for epoch in growing_norms(8, steps=50) for v in epoch]
    steps = [{"step": i + 1, "loss": 1.0 / (1 + i / 100), "grad_norm": g} for i, g in enumerate(norms)]
    evals = [{"step": 50 * (k + 1), "val_loss": 1.0 - 0.01 * k} for k in range(8)]
    f = diagnose(History(steps=steps, epochs=evals, meta={"evaluation_unit": "step"})).get(GRADIENT_GROWTH)
    assert f.evidence["grad_norm_p50"]["growth_per_epoch"] == pytest.approx(1.6, rel=0.02)  # per evaluation
    assert "per evaluation" in " ".join(f.evidence_text) and "the 2 evaluations at steps 350-400" not in f.problem
    assert "against the evaluation at step 50" in f.problem


def test_nbtrain_texts_are_unchanged():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    f = diagnose(make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg), cfg).get(GRADIENT_GROWTH)
    assert "(epochs 8-11, the last third, against epoch 0)" in f.problem
    assert "per epoch on a log-linear fit" in f.evidence_text[0]


# -- paths ------------------------------------------------------------------------------------
def test_a_path_is_read_with_read_log(monkeypatch, tmp_path):
    calls = []

    def read_log(path, format="auto", columns=None):
        calls.append(path)
        return hf_history()

    monkeypatch.setitem(sys.modules, "nbtrain.logs", types.SimpleNamespace(read_log=read_log))
    log = tmp_path / "trainer_state.json"
    data = as_run_data(log)
    assert calls == [log] and isinstance(data, RunData) and data.unit == "step"
    assert diagnose(str(log)).codes == diagnose(hf_history()).codes
    assert as_run_data(data) is data


def test_a_real_run_folder_path(tmp_path):
    h = healthy_history()
    h.save(tmp_path / "history.json")
    d = diagnose(tmp_path, HEALTHY_CONFIG)
    assert d.codes == diagnose(h, HEALTHY_CONFIG).codes == []


def test_positions_are_finite_numbers():
    data = as_run_data(hf_history())
    assert all(math.isfinite(p) for p in data.positions) and data.positions[:2] == [0.0, 1.0]


def test_plots_draw_evaluation_points_at_their_step():
    import matplotlib.pyplot as plt

    from nbtrain.views.plots import plot_grad_norms, plot_losses, plot_lr

    h = hf_history()
    ax = plot_losses(h)
    assert ax.get_xlabel() == "optimizer step"
    assert list(ax.get_lines()[1].get_xdata()) == [200, 400, 600, 800, 1000]
    assert ax.texts[0].get_text().endswith("(the evaluation at step 1,000)")
    assert [t.get_text() for t in plot_lr(h).texts] == []  # a linear decay: no cut marks at every step
    band = plot_grad_norms(h)
    assert "evaluation p50-p90" in band.get_legend_handles_labels()[1]
    plt.close("all")

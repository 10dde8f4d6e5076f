"""A readable log never crashes the diagnosis: odd logs, and checks that fail inside."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from histories import HEALTHY_CONFIG, HEALTHY_VAL, growing_norms, healthy_history, make_history

from nbtrain import History
from nbtrain.diagnosis import diagnostics
from nbtrain.diagnosis.checks import gradients
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.expectations import check_expectations
from nbtrain.diagnosis.findings import GRADIENT_GROWTH, HEAVY_CLIPPING, NON_FINITE
from nbtrain.diagnosis.summary import summarize
from nbtrain.views.plots import plot_run

NAN, INF = float("nan"), float("inf")


def _steps(n: int, **extra) -> list[dict]:
    return [{"step": i, "loss": 1.0 / (1 + i), "grad_norm": 1.0 + (i % 3) / 10, **extra} for i in range(n)]


ODD = {
    "only evaluations, fractional epochs": History(
        epochs=[{"step": 50 * i, "epoch": i / 4, "val_loss": 1 / i} for i in range(1, 9)], meta={"evaluation_unit": "step"}),
    "only steps, no epoch": History(steps=_steps(30)),
    "only steps, fractional epochs": History(steps=[{**r, "epoch": r["step"] / 7, "lr": 1e-3} for r in _steps(30)]),
    "a single evaluation": History(epochs=[{"epoch": 0, "val_loss": 1.0}]),
    "a single step": History(steps=[{"step": 0, "loss": 1.0}]),
    "an all-NaN column": History(epochs=[{"epoch": e, "val_loss": NAN, "train_loss": 1.0 - e / 10} for e in range(6)]),
    "an all-NaN DataFrame column": pd.DataFrame({"epoch": range(5), "val_loss": [NAN] * 5}),
    "no lr": History(steps=[{**r, "epoch": r["step"] // 10} for r in _steps(60)],
                     epochs=[{"epoch": e, "val_loss": 1 / (1 + e)} for e in range(6)]),
    "fractional epochs, no steps": History(epochs=[{"epoch": 0.5 * i, "val_loss": 1.0 - 0.1 * i} for i in range(1, 7)]),
    "epochs that are None": History(epochs=[{"epoch": None, "val_loss": 1.0}, {"epoch": None, "val_loss": 0.9}]),
    "words in number columns": pd.DataFrame({"epoch": ["a", "b", "c"], "val_loss": ["1", "x", 0.5]}),
    "repeated epochs (appended runs)": History(epochs=[{"epoch": e % 3, "val_loss": 1.0 - 0.05 * e, "lr": 1e-3}
                                                       for e in range(6)]),
    "steps out of order": History(steps=[{**r, "step": (r["step"] * 7) % 13} for r in _steps(20)],
                                  epochs=[{"step": 5, "val_loss": 1.0}, {"step": 12, "val_loss": 0.9}]),
    "empty with a partial config": History(meta={"config": {"grad_clip": 1.0}}),
    "sparse norms": History(steps=[{k: v for k, v in r.items() if k != "grad_norm" or r["step"] % 4 == 0}
                                   | {"epoch": r["step"] // 10} for r in _steps(80)],
                            epochs=[{"epoch": e, "val_loss": 1.0} for e in range(8)]),
    "an LR of zero": History(epochs=[{"epoch": e, "val_loss": 1.0, "lr": 0.0} for e in range(5)]),
    "infinite losses": History(epochs=[{"epoch": e, "val_loss": INF, "train_loss": INF} for e in range(5)]),
    "NaN LRs": History(steps=[{**r, "epoch": r["step"] // 10, "lr": NAN} for r in _steps(40)],
                       epochs=[{"epoch": e, "val_loss": 1.0} for e in range(4)]),
    "negative losses": History(steps=[{"step": i, "loss": -1.0 - i, "grad_norm": 1.0} for i in range(40)]),
    "row dicts": {"epochs": [{"epoch": 0, "val_loss": 1.0}], "steps": [{"step": 0, "epoch": 0, "loss": NAN}]},
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_logs_never_crash(name):
    h = ODD[name]
    d = diagnose(h)
    assert not any("failed on this log" in n for n in d.not_checked), d.not_checked
    json.dumps(d.to_dict(), allow_nan=False)
    d.to_markdown()
    summarize(h)
    check_expectations(h, None)
    plt.close(plot_run(h))


def test_what_each_odd_log_says():
    only_steps = diagnose(ODD["only steps, no epoch"])
    assert "no evaluation rows (epoch ends or evaluations): only the step-level checks ran" in only_steps.not_checked
    assert diagnose(ODD["a single step"]).codes == []
    assert NON_FINITE in diagnose(ODD["an all-NaN column"]).codes  # logged NaN values are values
    assert NON_FINITE in diagnose(ODD["infinite losses"]).codes
    assert "epoch numbers repeat (appended runs?): evaluation points taken in log order" in \
        diagnose(ODD["repeated epochs (appended runs)"]).not_checked
    assert NON_FINITE not in diagnose(ODD["sparse norms"]).codes


def test_a_check_that_fails_is_listed_and_the_others_still_run(monkeypatch):
    def boom(ctx):
        raise RuntimeError("odd column")

    monkeypatch.setattr(gradients, "growth_evidence", boom)
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    d = diagnose(make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg), cfg)
    assert GRADIENT_GROWTH not in d.codes and HEAVY_CLIPPING in d.codes
    assert "check_gradients failed on this log (RuntimeError: odd column): GRADIENT_GROWTH not checked" in d.not_checked


def test_a_new_check_that_fails_names_itself(monkeypatch):
    def check_something(ctx):
        ctx.add(None)
        raise KeyError("x")

    monkeypatch.setattr(diagnostics, "CHECKS", diagnostics.CHECKS + (check_something,))
    d = diagnose(healthy_history(), HEALTHY_CONFIG)
    assert d.codes == [] and d.not_checked == ["check_something failed on this log (KeyError: 'x'): its findings not "
                                               "checked"]


def test_a_schedule_that_cannot_be_read_is_listed(monkeypatch):
    from nbtrain.diagnosis import settings

    def boom(data, stated):
        raise ValueError("bad curve")

    monkeypatch.setattr(settings, "infer_schedule", boom)
    d = diagnose(pd.DataFrame({"val_loss": [1.0, 0.9], "lr": [1.0, 0.5]}))
    assert any("infer_schedule failed on this log (ValueError: bad curve)" in n for n in d.not_checked)
    assert d.settings["scheduler"] is None and math.isfinite(d.settings["lr"])

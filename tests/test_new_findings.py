"""GRADIENT_SPIKES, LOSS_SPIKES, ZERO_GRADIENTS and NON_FINITE's divergence-or-skips split."""

from __future__ import annotations

import json
import math

import pytest
from histories import HEALTHY_CONFIG, HEALTHY_VAL, growing_norms, healthy_history, hf_history, make_history

from nbtrain import measures
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.findings import (
    CODES,
    GRADIENT_GROWTH,
    GRADIENT_SPIKES,
    LOSS_SPIKES,
    NON_FINITE,
    ZERO_GRADIENTS,
)

NAN, INF = float("nan"), float("inf")


# -- the measurement -------------------------------------------------------------------------
def test_spikes_are_relative_to_the_running_median():
    values = [1.0 + 0.1 * math.sin(i) for i in range(100)]
    values[60] = 6000.0
    (s,) = measures.spikes(values)
    assert s.index == 60 and s.value == 6000.0
    assert s.median == pytest.approx(measures.percentile(values[10:60], 50))
    assert s.ratio == pytest.approx(6000.0 / s.median)
    assert measures.spikes([v * 1e5 for v in values])[0].index == 60  # scale-free
    assert measures.spikes(values[:60] + [9.9] + values[61:]) == []  # under 10x


def test_spikes_need_history_and_skip_zeros_and_non_finite():
    assert measures.spikes([1.0] * 9 + [100.0]) == []  # only 9 values before it
    assert [s.index for s in measures.spikes([1.0] * 10 + [100.0])] == [10]
    assert [s.index for s in measures.spikes([0.0, NAN, INF] + [1.0] * 10 + [0.0, 50.0])] == [14]
    steady = [1.05 ** i for i in range(200)]  # x131 over the run: growth, not spikes
    assert measures.spikes(steady) == []
    with pytest.raises(ValueError, match="ratio > 1"):
        measures.spikes([1.0], ratio=1.0)


def test_evaluation_windows():
    assert measures.evaluation_windows([1, 2, 3, 4, 5, 6], [2, 4]) == [0, 0, 1, 1, None, None]
    assert measures.evaluation_windows([NAN, 3], [2, 4]) == [None, 1]
    assert measures.evaluation_windows([1], [4, 2]) is None
    assert measures.evaluation_windows([1], [2, NAN]) is None


# -- GRADIENT_SPIKES -------------------------------------------------------------------------------
def test_gradient_spike_found_with_its_step_and_size():
    h = hf_history()
    h.steps[50]["grad_norm"] = 9000.0  # step 510
    f = diagnose(h).get(GRADIENT_SPIKES)
    assert f.severity == "warning"
    assert f.evidence["count"] == 1 and f.evidence["steps"] == [510] and f.evidence["values"] == [9000.0]
    assert f.evidence["largest_ratio"] == pytest.approx(9000.0 / f.evidence["running_medians"][0])
    assert "step 510: 9000" in f.evidence_text[0]


def test_steady_growth_is_growth_not_spikes():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    d = diagnose(make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg), cfg)
    assert GRADIENT_GROWTH in d.codes and GRADIENT_SPIKES not in d.codes


def test_large_but_steady_norms_are_normal():
    d = diagnose(hf_history(norm=1e5))
    assert GRADIENT_SPIKES not in d.codes and NON_FINITE not in d.codes


def test_healthy_run_has_no_spikes_and_nothing_unchecked():
    d = diagnose(healthy_history(), HEALTHY_CONFIG)  # its one clipped step is 5.5x the median: no spike
    assert d.codes == [] and d.not_checked == []


# -- LOSS_SPIKES -----------------------------------------------------------------------------------
def test_loss_spike_that_recovers_is_info_one_that_does_not_is_a_warning():
    h = hf_history()
    h.steps[60]["loss"] = 50.0
    f = diagnose(h).get(LOSS_SPIKES)
    assert f.severity == "info" and f.evidence["steps"] == [610] and f.evidence["not_recovered_steps"] == []
    for row in h.steps[60:]:
        row["loss"] = 50.0 if row is h.steps[60] else 12.0  # stays 20x above its earlier level
    f = diagnose(h).get(LOSS_SPIKES)
    assert f.severity == "warning" and f.evidence["not_recovered_steps"] == [610]
    assert "did not recover" in f.problem


# -- ZERO_GRADIENTS --------------------------------------------------------------------------------
def test_zero_gradients_with_their_share():
    h = hf_history()
    for row in h.steps[:70]:
        row["grad_norm"] = 0.0
    f = diagnose(h).get(ZERO_GRADIENTS)
    assert f.severity == "critical" and f.evidence["count"] == 70 and f.evidence["share"] == pytest.approx(0.7)
    assert f.evidence["first_steps"][:2] == [10, 20]
    h = hf_history()
    h.steps[5]["grad_norm"] = 0.0
    f = diagnose(h).get(ZERO_GRADIENTS)
    assert f.severity == "warning" and f.evidence["count"] == 1 and "detached" in f.explanation


def test_zero_norm_with_a_zero_loss_is_not_a_zero_gradient():
    h = hf_history()
    h.steps[5].update(grad_norm=0.0, loss=0.0)
    assert ZERO_GRADIENTS not in diagnose(h).codes


# -- NON_FINITE ---------------------------------------------------------------------------------------
def test_missing_values_are_never_non_finite():
    h = hf_history()
    for i, row in enumerate(h.steps):
        if i % 3:
            del row["grad_norm"]  # a step without a logged norm
    assert NON_FINITE not in diagnose(h).codes
    # the same cells as a DataFrame are NaN values (DataFrames keep today's meaning)
    d = diagnose({"epochs": h.to_dataframe(), "steps": h.to_dataframe("step"), "meta": h.meta})
    assert NON_FINITE in d.codes


def test_non_finite_loss_is_divergence():
    h = hf_history()
    h.steps[40]["loss"] = NAN
    h.steps[41]["grad_norm"] = INF
    f = diagnose(h).get(NON_FINITE)
    assert f.severity == "critical" and f.evidence["divergence"] is True
    assert f.evidence["step.loss"]["first_step"] == 410
    assert "diverged" in f.explanation


def test_non_finite_norms_with_finite_losses_are_loss_scaler_skips():
    h = hf_history()
    for i in (0, 1, 2):
        h.steps[i]["grad_norm"] = INF if i else NAN
    f = diagnose(h).get(NON_FINITE)
    assert f.severity == "info" and f.evidence["divergence"] is False
    assert f.evidence["skipped_steps"] == 3 and f.evidence["first_skipped_steps"] == [10, 20, 30]
    assert "loss scaler" in f.problem and "not divergence" in f.problem
    for row in h.steps[:20]:
        row["grad_norm"] = INF  # 20% of the steps: frequent
    assert diagnose(h).get(NON_FINITE).severity == "warning"


def test_rows_flagged_skipped_count_as_skips():
    h = hf_history()
    for row in h.steps[:2]:
        row["skipped"] = True
    f = diagnose(h).get(NON_FINITE)
    assert f.severity == "info" and f.evidence["skipped_steps"] == 2


def test_non_finite_evidence_stays_json_safe():
    h = hf_history()
    h.steps[3]["grad_norm"] = INF
    h.epochs[1]["val_loss"] = NAN
    d = diagnose(h)
    ev = d.get(NON_FINITE).evidence
    assert ev["epoch.val_loss"]["first_evaluation"] == 400  # evaluations named by step in a step-unit run
    json.dumps(d.to_dict(), allow_nan=False)


def test_new_codes_are_stable_and_described():
    for code in (GRADIENT_SPIKES, LOSS_SPIKES, ZERO_GRADIENTS):
        assert code in CODES and len(CODES[code]) > 40

"""diagnose(): each finding fires on a crafted log and stays quiet on a healthy run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from histories import (
    HEALTHY_CONFIG,
    HEALTHY_VAL,
    SEED_CONFIG,
    growing_norms,
    healthy_history,
    make_history,
    seed_frame,
)

from nbtrain import History, TrainConfig
from nbtrain.files import from_json_safe
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.findings import (
    CODES,
    GRADIENT_GROWTH,
    HEAVY_CLIPPING,
    LR_NOT_ADAPTING,
    NON_FINITE,
    OVERFITTING,
    RUN_TOO_SHORT_FOR_PATIENCE,
    SCHEDULER_MISMATCH,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    Diagnosis,
)


# -- the write-up's own numbers ----------------------------------------------------------
def test_write_up_numbers_give_all_three_issues():
    d = diagnose(seed_frame(), SEED_CONFIG)
    for code in (LR_NOT_ADAPTING, GRADIENT_GROWTH, VAL_FLUCTUATING):
        assert code in d.codes
    md = d.to_markdown()
    assert "0.5869" in md
    assert "0.58684" in md
    assert "4 epochs in a row (epochs 2-5) have not improved" in md
    assert "end of epoch 7" in md
    lr = d.get(LR_NOT_ADAPTING).evidence
    assert lr["best"] == 0.5869 and lr["best_epoch"] == 1 and lr["num_bad_epochs"] == 4
    assert lr["next_cut_epoch"] == 7 and lr["keras_cut_epoch"] == 6
    assert lr["improved_on_previous_not_best"] == [4, 5]
    assert round(lr["improvement_threshold"], 5) == 0.58684


def test_write_up_report_follows_its_structure():
    md = diagnose(seed_frame(), SEED_CONFIG).to_markdown()
    heads = ["## Issues identified", "## Suggested fixes", "## What to monitor next", "## Not checked"]
    positions = [md.index(h) for h in heads]
    assert positions == sorted(positions)
    for word in ("**Problem**", "**Evidence**", "**Root cause**", "**Change**", "**Rationale**"):
        assert word in md
    # what the write-up's numbers cannot show is said, not guessed
    assert "no train_loss column" in md
    assert "clipping frequency not checked" in md


def test_gradient_growth_on_write_up_numbers_explains_pre_clip():
    f = diagnose(seed_frame(), SEED_CONFIG).get(GRADIENT_GROWTH)
    assert f.evidence["grad_norm_max"]["ratio"] == pytest.approx(9.0)
    assert f.evidence["clip_scale_at_largest"] == pytest.approx(2 / 18)
    assert any("BEFORE clipping" in t and "not that it failed" in t for t in f.evidence_text)


def test_run_too_short_for_patience_with_numbers():
    f = diagnose(seed_frame(), SEED_CONFIG).get(RUN_TOO_SHORT_FOR_PATIENCE)
    assert f.evidence == {"epochs_run": 6, "patience": 5, "epochs_needed": 7, "earliest_cut_epoch": 6}
    assert "end of epoch 6" in f.problem


# -- a healthy run stays quiet ----------------------------------------------------------
def test_healthy_run_has_no_findings_and_nothing_unchecked():
    d = diagnose(healthy_history(), HEALTHY_CONFIG)
    assert d.findings == []
    assert d.not_checked == []
    assert "No issues found" in d.to_markdown()


def test_healthy_run_without_config_uses_stored_config():
    d = diagnose(healthy_history())
    assert d.codes == []
    assert d.settings["patience"] == 2 and d.settings["source"] == "history meta"


# -- each finding fires -------------------------------------------------------------------
def test_lr_not_adapting_quiet_when_scheduler_cut_during_stall():
    val = [1.0, 0.8, 0.81, 0.82, 0.83, 0.84]
    d = diagnose(make_history(val, config=HEALTHY_CONFIG), HEALTHY_CONFIG)
    assert d.get(LR_NOT_ADAPTING) is None  # torch cut at epoch 4 (patience 2)
    assert d.get(SCHEDULER_MISMATCH) is None


def test_lr_not_adapting_fires_and_names_the_patience_that_would_have_cut():
    cfg = HEALTHY_CONFIG.replace(scheduler_patience=4)
    val = [1.0, 0.8, 0.81, 0.79995, 0.805, 0.803]  # epoch 3 is within the threshold: not better
    f = diagnose(make_history(val, config=cfg), cfg).get(LR_NOT_ADAPTING)
    assert f.evidence["num_bad_epochs"] == 4
    assert f.evidence["improved_on_previous_not_best"] == [3, 5]
    assert f.evidence["next_cut_epoch"] == 6
    assert "Patience 3 would have cut the LR at the end of epoch 5" in f.suggestion


def test_run_too_short_quiet_while_still_improving():
    df = pd.DataFrame({"val_loss": [1.0, 0.9, 0.8]})
    assert RUN_TOO_SHORT_FOR_PATIENCE not in diagnose(df, SEED_CONFIG).codes


def test_scheduler_mismatch_when_lr_column_disagrees():
    h = healthy_history()
    for row in h.epochs:
        row["lr"] = 1e-3  # the run never cut, but torch would have at epoch 7
    d = diagnose(h, HEALTHY_CONFIG)
    f = d.get(SCHEDULER_MISMATCH)
    assert f.evidence["epoch"] == 7
    assert f.evidence["expected_lr"] == pytest.approx(1e-4)


def test_gradient_growth_and_heavy_clipping_fire_with_suggested_clip():
    norms = growing_norms(12)
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    d = diagnose(make_history(HEALTHY_VAL, norms=norms, config=cfg), cfg)
    g = d.get(GRADIENT_GROWTH)
    assert g.evidence["grad_norm_p50"]["growth_per_epoch"] == pytest.approx(1.6)
    assert g.evidence["suggested_clip"] == pytest.approx(np.percentile(norms[0], 90))
    assert g.severity == "critical"
    h = d.get(HEAVY_CLIPPING)
    assert h.evidence["clip_fraction"] > 0.5
    assert "lower LR" in h.explanation or "Lower the learning rate" in h.suggestion
    assert "Playbook" in h.explanation


def test_gradient_growth_uses_the_measures_definition():
    # 7 epochs: the late window is epochs 5-6, pooled, against epoch 0 (nbtrain.measures)
    norms = growing_norms(7, start=0.6, factor=1.3)
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0, epochs=7)
    g = diagnose(make_history(HEALTHY_VAL[:7], norms=norms, config=cfg), cfg).get(GRADIENT_GROWTH)
    p50 = g.evidence["grad_norm_p50"]
    assert p50["late_epochs"] == [5, 6] and p50["source"] == "step rows"
    assert p50["ratio"] == pytest.approx(np.median(norms[5] + norms[6]) / np.median(norms[0]))
    assert g.evidence["grad_norm_max"]["ratio"] == pytest.approx(max(norms[6]) / max(norms[0]))
    assert f"median {p50['ratio']:.3g}×" in g.problem and "epochs 5-6" in g.problem


def test_heavy_clipping_problem_says_last_epoch_when_only_it_is_over_half():
    norms = [[1.0 + 0.01 * i for i in range(20)] for _ in range(11)] + [[3.0] * 20]
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    f = diagnose(make_history(HEALTHY_VAL, norms=norms, config=cfg), cfg).get(HEAVY_CLIPPING)
    assert f.evidence["clip_fraction"] < 0.5 < f.evidence["clip_fraction_last_epoch"]
    assert f.problem == "8% of the optimizer steps were clipped at the threshold 2 (100% in the last epoch)."
    assert f.title == "Clipping most updates in the last epoch"
    heavy = diagnose(make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg), cfg).get(HEAVY_CLIPPING)
    assert heavy.evidence["clip_fraction"] > 0.5 and heavy.title == "Clipping most updates"
    assert heavy.problem.startswith(f"{heavy.evidence['clip_fraction']:.0%} of the optimizer steps were clipped")


def test_reference_specifics_only_in_reference_reports():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    h = make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg)
    other = diagnose(h, cfg)
    h.meta["experiment"] = "reference"
    reference = diagnose(h, cfg)
    assert set(other.codes) == set(reference.codes) >= {GRADIENT_GROWTH, HEAVY_CLIPPING}
    for specific, code in (("chaotic systems do", GRADIENT_GROWTH), ("say 2.0 → 3.0", HEAVY_CLIPPING)):
        assert specific in reference.get(code).explanation
        assert specific not in other.to_markdown()


def test_lr_not_adapting_does_not_vouch_for_a_mismatched_scheduler():
    cfg = HEALTHY_CONFIG.replace(scheduler_patience=4)
    val = [1.0, 0.8, 0.81, 0.79995, 0.805, 0.803]
    matched = diagnose(make_history(val, config=cfg), cfg)
    assert SCHEDULER_MISMATCH not in matched.codes
    assert "working as specified" in matched.get(LR_NOT_ADAPTING).explanation
    mismatched = diagnose(make_history(val, config=cfg, lr=[5e-4] * len(val)), cfg)
    assert SCHEDULER_MISMATCH in mismatched.codes
    f = mismatched.get(LR_NOT_ADAPTING)
    assert "working as specified" not in f.explanation and "scheduler-mismatch" in f.explanation
    assert f.evidence["scheduler_mismatch"] is True


def test_heavy_clipping_from_medians_alone():
    df = pd.DataFrame({"epoch": range(3), "val_loss": [1.0, 0.9, 0.8], "grad_norm_p50": [1.0, 1.5, 2.5]})
    f = diagnose(df, TrainConfig(grad_clip=2.0)).get(HEAVY_CLIPPING)
    assert f.evidence["epochs_median_above_clip"] == [2]


def test_gradient_growth_uses_step_rows_when_epoch_rows_lack_norms():
    h = make_history(HEALTHY_VAL, norms=growing_norms(12), config=HEALTHY_CONFIG.replace(grad_clip=None))
    for row in h.epochs:
        for k in ("grad_norm_p50", "grad_norm_p90", "grad_norm_max", "clip_fraction"):
            del row[k]
    d = diagnose(h)
    assert GRADIENT_GROWTH in d.codes
    assert d.get(GRADIENT_GROWTH).evidence["grad_norm_p50"]["growth_per_epoch"] == pytest.approx(1.6)


def test_val_fluctuating_is_called_noise_when_train_keeps_falling():
    val = [1.0, 0.7, 0.75, 0.72, 0.78, 0.71, 0.74]
    d = diagnose(make_history(val), HEALTHY_CONFIG)
    f = d.get(VAL_FLUCTUATING)
    assert f.evidence["epochs_since_best"] == 5
    assert f.evidence["rises_after_best"] == [2, 4, 6]
    assert "noise, not overfitting" in f.explanation
    assert OVERFITTING not in d.codes


def test_overfitting_is_its_own_code():
    val = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.86]
    d = diagnose(make_history(val), HEALTHY_CONFIG)
    assert OVERFITTING in d.codes
    assert VAL_FLUCTUATING not in d.codes
    f = d.get(OVERFITTING)
    assert f.evidence["train_slope"] < 0 < f.evidence["val_slope"]


def test_train_loss_plateau():
    train = [1.0, 0.8, 0.7, 0.699, 0.6985, 0.698]
    d = diagnose(make_history([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], train=train), HEALTHY_CONFIG)
    f = d.get(TRAIN_LOSS_PLATEAU)
    assert f.evidence["relative_improvement"] == pytest.approx((0.7 - 0.698) / 0.7)


def test_non_finite_values():
    h = healthy_history()
    h.epochs[3]["val_loss"] = float("nan")
    h.steps[50]["grad_norm"] = float("inf")
    d = diagnose(h, HEALTHY_CONFIG)
    f = d.get(NON_FINITE)
    assert f.severity == "critical"
    assert f.evidence["epoch.val_loss"]["first_epoch"] == 3
    assert f.evidence["step.grad_norm"]["first_step"] == 50
    json.dumps(d.to_dict(), allow_nan=False)


# -- what it could not check, and what it assumed -------------------------------------------
def test_only_validation_losses():
    df = pd.DataFrame({"val_loss": [1.0, 0.9, 0.8, 0.7]})
    d = diagnose(df)
    assert d.codes == []
    text = " ".join(d.not_checked)
    assert "no grad_norm columns" in text and "no train_loss column" in text
    assert "rows taken as epochs 0-3" in text
    # issue 14: no config and no LR logged: the scheduler is unknown, never assumed to be ReduceLROnPlateau
    assert "scheduler unknown (no config states it and no LR is logged" in text and "LR_NOT_ADAPTING" in text
    assert not any("ReduceLROnPlateau" in a for a in d.assumptions)
    assert d.settings["scheduler"] is None


def test_clip_threshold_inferred_from_step_rows():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    h = make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg)
    h.meta = {}
    d = diagnose(h)
    assert d.settings["grad_clip"] == pytest.approx(2.0, rel=1e-5)
    assert any("clip threshold 2 inferred" in a for a in d.assumptions)
    assert any("initial LR 0.001" in a for a in d.assumptions)


def test_partial_config_dict_states_its_defaults():
    d = diagnose(seed_frame(), {"lr": 2e-5, "grad_clip": 2.0, "scheduler": "plateau"})
    assert any("'scheduler_patience'" in a and "5" in a for a in d.assumptions)
    assert LR_NOT_ADAPTING in d.codes


def test_partial_config_without_scheduler_infers_it_from_the_log():
    # issue 14: a partial config that does not state the scheduler does not mean ReduceLROnPlateau
    d = diagnose(seed_frame(), {"lr": 2e-5, "grad_clip": 2.0})
    assert LR_NOT_ADAPTING not in d.codes and RUN_TOO_SHORT_FOR_PATIENCE not in d.codes
    assert d.settings["scheduler"] == "constant" and d.settings["schedule"]["source"] == "inferred"
    assert any("logged LR is constant" in n and "LR_NOT_ADAPTING" in n for n in d.not_checked)
    assert any("constant LR 2e-05" in a for a in d.assumptions)
    assert GRADIENT_GROWTH in d.codes and d.settings["grad_clip"] == 2.0


def test_rising_lr_means_not_a_plateau_scheduler():
    df = pd.DataFrame({"val_loss": [1.0, 0.9, 0.95, 0.97], "lr": [1e-3, 5e-4, 1e-3, 5e-4]})
    d = diagnose(df)
    assert any("not ReduceLROnPlateau" in n for n in d.not_checked)


# -- inputs and outputs -----------------------------------------------------------------
def test_input_forms_agree():
    h = make_history(HEALTHY_VAL, norms=growing_norms(12), config=HEALTHY_CONFIG.replace(grad_clip=2.0))
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    as_history = diagnose(h, cfg)
    as_dict = diagnose({"epochs": h.to_dataframe(), "steps": h.to_dataframe("step")}, cfg)
    as_rows = diagnose({"epochs": h.epochs, "steps": h.steps}, cfg)
    assert as_history.codes == as_dict.codes == as_rows.codes
    assert diagnose(h.to_dataframe(), cfg).codes  # epoch rows alone still find the growth
    assert as_history.to_dict() == as_dict.to_dict()


def test_outputs_are_json_safe_and_render():
    d = diagnose(seed_frame(), SEED_CONFIG)
    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert [f["code"] for f in data["findings"]] == d.codes
    assert d._repr_markdown_() == d.to_markdown()
    assert isinstance(d, Diagnosis) and len(d) == len(d.codes) and LR_NOT_ADAPTING in d
    for f in d.findings:
        assert f.code in CODES
        assert f.severity in ("info", "warning", "critical")
        assert f.explanation and f.suggestion and f.evidence


def test_empty_history():
    d = diagnose(History())
    assert d.codes == [] and d.not_checked == ["no epoch rows: nothing to diagnose"]


@pytest.mark.parametrize(
    "history, config, exc, match",
    [
        ([1, 2], None, TypeError, "history must be an nbtrain History, a pandas DataFrame"),
        ({"epoch": []}, None, ValueError, "history dict must have keys 'epochs'"),
        (pd.DataFrame({"val_loss": [1.0]}), 3, TypeError, "config must be a TrainConfig, a dict of its fields or None, got int"),
        (pd.DataFrame({"val_loss": [1.0]}), {"learning_rate": 1}, ValueError, "unknown TrainConfig field.*learning_rate"),
        (pd.DataFrame({"val_loss": [1.0]}), {"lr": -1.0}, ValueError, "lr must be > 0"),
    ],
)
def test_bad_inputs(history, config, exc, match):
    with pytest.raises(exc, match=match):
        diagnose(history, config)


def test_non_finite_evidence_is_nan_in_memory_and_encoded_in_json():
    h = healthy_history()
    h.epochs[3]["val_loss"] = float("nan")
    h.steps[50]["grad_norm"] = float("inf")
    d = diagnose(h, HEALTHY_CONFIG)
    ev = d.get(NON_FINITE).evidence
    # in memory: the offending values themselves, as floats
    assert isinstance(ev["epoch.val_loss"]["value"], float) and math.isnan(ev["epoch.val_loss"]["value"])
    assert ev["step.grad_norm"]["value"] == math.inf
    # as JSON: strict (no NaN literal), with the non-finite floats encoded ...
    text = json.dumps(d.to_dict(), allow_nan=False)
    raw = next(f for f in json.loads(text)["findings"] if f["code"] == NON_FINITE)["evidence"]
    assert raw["epoch.val_loss"]["value"] == {"float": "nan"}
    assert raw["step.grad_norm"]["value"] == {"float": "inf"}
    # ... and decoded back to the same floats
    back = next(f for f in from_json_safe(json.loads(text))["findings"] if f["code"] == NON_FINITE)["evidence"]
    assert math.isnan(back["epoch.val_loss"]["value"]) and back["step.grad_norm"]["value"] == math.inf
    assert back["epoch.val_loss"]["first_epoch"] == 3 and back["step.grad_norm"]["first_step"] == 50

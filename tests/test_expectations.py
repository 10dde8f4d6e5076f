"""check_expectations(): every claim can be held, not held, too early or unchecked."""

from __future__ import annotations

import json

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

from nbtrain.diagnosis.expectations import (
    HELD,
    NOT_CHECKED,
    NOT_ENOUGH_EPOCHS,
    NOT_HELD,
    STATUSES,
    Expectations,
    Verdict,
    check_expectations,
)

MONOTONE_VAL = [1.0, 0.9, 0.8, 0.72, 0.66, 0.61]


def status(history, config, name, baseline=None):
    return check_expectations(history, config, baseline).get(name)


def test_healthy_run_holds_the_monitoring_points():
    ex = check_expectations(healthy_history(), HEALTHY_CONFIG)
    assert [v.name for v in ex] == [
        "grad_norms_below_clip",
        "occasional_clips_up_to_6",
        "lr_cut_after_patience",
        "val_improving_consistently",
        "train_loss_decreasing",
    ]
    by = {v.name: v for v in ex}
    assert by["grad_norms_below_clip"].status == HELD
    assert by["grad_norms_below_clip"].evidence["share_below"] == pytest.approx(239 / 240)
    assert by["occasional_clips_up_to_6"].status == HELD
    assert by["lr_cut_after_patience"].status == HELD
    assert by["lr_cut_after_patience"].evidence["observed_cut_epochs"] == [7]
    assert by["train_loss_decreasing"].status == HELD
    # 8 of 11 epochs set a new best: below the 75% the rule asks for
    assert by["val_improving_consistently"].status == NOT_HELD


def test_write_up_numbers():
    ex = check_expectations(seed_frame(), SEED_CONFIG)
    by = {v.name: v for v in ex}
    assert by["occasional_clips_up_to_6"].status == NOT_HELD
    assert by["occasional_clips_up_to_6"].evidence["largest_norm"] == 18
    assert by["lr_cut_after_patience"].status == NOT_ENOUGH_EPOCHS
    assert "end of epoch 7" in by["lr_cut_after_patience"].detail
    assert by["val_improving_consistently"].status == NOT_HELD
    assert by["grad_norms_below_clip"].status == NOT_CHECKED  # only maxima: 90% cannot be shown
    assert by["train_loss_decreasing"].status == NOT_CHECKED


# -- one claim at a time ---------------------------------------------------------------------
def test_grad_norms_below_clip_statuses():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0)
    grown = make_history(HEALTHY_VAL, norms=growing_norms(12), config=cfg)
    assert status(grown, cfg, "grad_norms_below_clip").status == NOT_HELD
    assert status(grown, HEALTHY_CONFIG.replace(grad_clip=None), "grad_norms_below_clip").status == NOT_CHECKED
    # epoch rows only: clip_fraction, then p90
    epochs = grown.to_dataframe()
    v = status(epochs, cfg, "grad_norms_below_clip")
    assert v.status == NOT_HELD and v.evidence["source"] == "clip_fraction weighted by n_steps"
    v = status(epochs.drop(columns=["clip_fraction"]), cfg.replace(grad_clip=1000.0), "grad_norms_below_clip")
    assert v.status == HELD and v.evidence["source"] == "grad_norm_p90"
    only_p50 = epochs[["epoch", "val_loss", "grad_norm_p50"]]
    assert status(only_p50, cfg, "grad_norms_below_clip").status == NOT_HELD  # medians above the clip
    assert status(only_p50, cfg.replace(grad_clip=1000.0), "grad_norms_below_clip").status == NOT_CHECKED


def test_lr_cut_statuses():
    h = healthy_history()
    assert status(h, HEALTHY_CONFIG, "lr_cut_after_patience").status == HELD
    for row in h.epochs:
        row["lr"] = 1e-3
    v = status(h, HEALTHY_CONFIG, "lr_cut_after_patience")
    assert v.status == NOT_HELD and v.evidence["expected_cut_epochs"] == [7]
    assert status(pd.DataFrame({"val_loss": HEALTHY_VAL}), HEALTHY_CONFIG, "lr_cut_after_patience").status == NOT_CHECKED
    cosine = HEALTHY_CONFIG.replace(scheduler="cosine_warm_restarts")
    assert status(healthy_history(), cosine, "lr_cut_after_patience").status == NOT_CHECKED


def test_val_and_train_statuses():
    good = make_history(MONOTONE_VAL)
    assert status(good, HEALTHY_CONFIG, "val_improving_consistently").status == HELD
    short = make_history([1.0, 0.9])
    assert status(short, HEALTHY_CONFIG, "val_improving_consistently").status == NOT_ENOUGH_EPOCHS
    assert status(short, HEALTHY_CONFIG, "train_loss_decreasing").status == NOT_ENOUGH_EPOCHS
    flat = make_history(MONOTONE_VAL, train=[1.0, 0.8, 0.7, 0.699, 0.6985, 0.698])
    v = status(flat, HEALTHY_CONFIG, "train_loss_decreasing")
    assert v.status == NOT_HELD and v.evidence["recent_improvement"] < 0.01


# -- against a baseline ----------------------------------------------------------------------
def round1_like():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0, scheduler_patience=5)
    val = [1.0, 0.7, 0.75, 0.72, 0.73, 0.74]
    return make_history(val, norms=growing_norms(6), config=cfg)


def round2_like():
    cfg = HEALTHY_CONFIG.replace(grad_clip=3.0, scheduler_patience=1)
    val = [1.0, 0.68, 0.7, 0.69, 0.66, 0.65]
    return make_history(val, config=cfg), cfg


def test_baseline_claims_held():
    run, cfg = round2_like()
    by = {v.name: v for v in check_expectations(run, cfg, baseline=round1_like())}
    for name in ("more_stable_gradients", "less_frequent_clipping", "faster_lr_adaptation", "better_validation_loss"):
        assert by[name].status == HELD, (name, by[name].detail)
    assert by["faster_lr_adaptation"].evidence["run_first_cut"] == 3
    assert by["faster_lr_adaptation"].evidence["baseline_first_cut"] is None


def test_baseline_claims_not_held_when_swapped():
    run, cfg = round2_like()
    base = run
    worse = round1_like()
    by = {v.name: v for v in check_expectations(worse, HEALTHY_CONFIG.replace(grad_clip=2.0, scheduler_patience=5), base)}
    for name in ("more_stable_gradients", "less_frequent_clipping", "faster_lr_adaptation", "better_validation_loss"):
        assert by[name].status == NOT_HELD, name


def test_baseline_not_enough_and_not_checked():
    ex = check_expectations(seed_frame(), SEED_CONFIG, baseline=seed_frame())
    by = {v.name: v for v in ex}
    assert by["faster_lr_adaptation"].status == NOT_ENOUGH_EPOCHS
    assert by["less_frequent_clipping"].status == NOT_CHECKED
    assert by["better_validation_loss"].status == NOT_HELD  # equal is not better


# -- the container --------------------------------------------------------------------------
def test_every_verdict_shows_its_numbers():
    run, cfg = round2_like()
    ex = check_expectations(run, cfg, baseline=round1_like())
    assert isinstance(ex, Expectations) and len(ex) == 9
    for v in ex:
        assert v.status in STATUSES and v.detail
        if v.status in (HELD, NOT_HELD):
            assert v.evidence, v.name
    df = ex.to_dataframe()
    assert list(df.columns) == ["name", "claim", "status", "evidence", "detail"]
    md = ex.to_markdown()
    assert md.startswith("| Expectation | Status | Detail |") and "**held**" in md
    assert ex._repr_markdown_() == md
    json.dumps(ex.to_dicts(), allow_nan=False)


def test_bad_status_rejected():
    with pytest.raises(ValueError, match="status must be one of"):
        Verdict("x", "claim", "maybe")

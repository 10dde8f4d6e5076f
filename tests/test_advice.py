"""Advice that agrees with the evidence (issue 15): every finding's text quotes its own measured
numbers, the report nests under other headings, and suggestions use alternatives already
measured (``diagnose(..., tried=...)``, ``nbtrain diagnose RUN --tried ...``) on real tiny runs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from histories import (
    HEALTHY_CONFIG,
    HEALTHY_VAL,
    SEED_CONFIG,
    growing_norms,
    healthy_history,
    hf_history,
    make_history,
    seed_frame,
)
from tasks import make_mlp, make_regression

from nbtrain import TrainConfig, measures, summarize, train
from nbtrain.cli import main
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.findings import (
    GRADIENT_GROWTH,
    GRADIENT_SPIKES,
    HEAVY_CLIPPING,
    LOSS_SPIKES,
    LR_NOT_ADAPTING,
    NON_FINITE,
    OVERFITTING,
    RUN_TOO_SHORT_FOR_PATIENCE,
    SCHEDULER_MISMATCH,
    TRAIN_LOSS_PLATEAU,
    VAL_FLUCTUATING,
    ZERO_GRADIENTS,
    Change,
)
from nbtrain.diagnosis.formatting import lr_text, num, percent, sci, sig, times

CLIP2 = HEALTHY_CONFIG.replace(grad_clip=2.0)


def text(f) -> str:
    return " ".join([f.problem, *f.evidence_text])


def clipped_history(shares: list[int], steps: int = 100):
    """Epochs of ``steps`` norms, ``shares[e]`` of them above the threshold 2 (3.0), the rest 1.0."""
    norms = [[3.0] * k + [1.0] * (steps - k) for k in shares]
    return make_history(HEALTHY_VAL[: len(shares)], norms=norms, config=CLIP2)


# -- the write-up's case: 30% overall, 52% in the last epoch ---------------------------------------------------
def test_heavy_clipping_says_30_percent_not_more_than_half():
    h = clipped_history([0, 2, 28, 41, 43, 47, 52])
    d = diagnose(h, CLIP2)
    f = d.get(HEAVY_CLIPPING)
    assert f.evidence["clip_fraction"] == pytest.approx(213 / 700)
    assert f.problem == "30% of the optimizer steps were clipped at the threshold 2 (52% in the last epoch)."
    assert f.title == "Clipping most updates in the last epoch"
    for finding in d.findings:  # no finding says "more than half" of the steps for a 30% share
        assert "more than half" not in " ".join([finding.problem, finding.suggestion, *finding.evidence_text])


def test_heavy_clipping_from_medians_says_at_least_half():
    df = pd.DataFrame({"epoch": range(3), "val_loss": [1.0, 0.9, 0.8], "grad_norm_p50": [1.0, 1.5, 2.5]})
    f = diagnose(df, TrainConfig(grad_clip=2.0)).get(HEAVY_CLIPPING)
    assert f.problem.startswith("At least half of the optimizer steps were clipped at the threshold 2 in epoch(s) 2")


# -- each check quotes its own evidence -------------------------------------------------------------------
def test_gradient_growth_quotes_the_growth_summarize_shows():
    h = make_history(HEALTHY_VAL, norms=growing_norms(12), config=CLIP2)
    f = diagnose(h, CLIP2).get(GRADIENT_GROWTH)
    for stat in ("p50", "p90", "max"):
        assert times(f.evidence[f"grad_norm_{stat}"]["ratio"]) in f.problem
    s = summarize(h, CLIP2)
    assert f"median {times(s['grad_norm_growth_p50'])}" in f.problem  # one number for one run
    assert f"largest {times(s['grad_norm_growth_max'])}" in f.problem
    assert percent(f.evidence["clip_fraction"]) in text(f)


def _late_share(norms, threshold, late=(5, 6)):
    """Share of the late epochs' steps torch's clip_grad_norm_ scales at ``threshold`` (coef < 1)."""
    flags = [threshold / (n + 1e-6) < 1 for e in late for n in norms[e]]
    return sum(flags) / len(flags)


def test_gradient_growth_says_what_the_p90_threshold_would_clip():
    # norms grown 1.6x per epoch: epoch 0's p90 sits below every late step
    norms = growing_norms(7)
    cfg = CLIP2.replace(epochs=7)
    f = diagnose(make_history(HEALTHY_VAL[:7], norms=norms, config=cfg), cfg).get(GRADIENT_GROWTH)
    p90 = measures.percentile(norms[0], 90)
    share = _late_share(norms, p90)
    assert share == 1.0 and f.evidence["suggested_clip"] == pytest.approx(p90)
    assert f.evidence["suggested_clip_late_share"] == pytest.approx(share)
    assert f"near {sig(p90, 3)}, the 90th percentile of epoch 0's pre-clip norms" in f.suggestion
    assert f"on this run it would have clipped {percent(share)} of the steps of epochs 5-6" in f.suggestion
    assert "so first bring the growth down" in f.suggestion and num(p90) not in f.suggestion  # 3 figures, not 5
    change = next(c for c in f.changes if c.field == "grad_clip" and c.direction == "to")
    assert change.value == pytest.approx(p90) and change.text in f.suggestion


def test_gradient_growth_p90_threshold_that_would_clip_few_late_steps():
    # only the largest norm grows (a rising tail): the p90 threshold would clip a minority of the late steps
    norms = [[1.0 + 0.01 * i for i in range(20)] + [1.2 * 1.5 ** e] for e in range(7)]
    cfg = CLIP2.replace(epochs=7)
    f = diagnose(make_history(HEALTHY_VAL[:7], norms=norms, config=cfg), cfg).get(GRADIENT_GROWTH)
    p90 = measures.percentile(norms[0], 90)
    share = _late_share(norms, p90)
    assert 0 < share < 0.5 and f.evidence["suggested_clip_late_share"] == pytest.approx(share)
    assert f"on this run it would have clipped {percent(share)} of the steps of epochs 5-6." in f.suggestion
    assert "bring the growth down" not in f.suggestion


def test_heavy_clipping_quotes_its_shares():
    f = diagnose(make_history(HEALTHY_VAL, norms=growing_norms(12), config=CLIP2), CLIP2).get(HEAVY_CLIPPING)
    assert percent(f.evidence["clip_fraction"]) in f.problem
    assert percent(f.evidence["clip_fraction_last_epoch"]) in f.problem
    assert sig(f.evidence["suggested_clip"], 3) in f.suggestion


def test_lr_not_adapting_quotes_its_state():
    cfg = HEALTHY_CONFIG.replace(scheduler_patience=4)
    f = diagnose(make_history([1.0, 0.8, 0.81, 0.79995, 0.805, 0.803], config=cfg), cfg).get(LR_NOT_ADAPTING)
    ev = f.evidence
    assert lr_text(ev["lr"]) in f.problem and num(ev["best"]) in f.problem
    assert f"for {ev['epochs_since_best']} epochs" in f.problem
    assert f"counter is {ev['num_bad_epochs']}" in text(f) and num(ev["improvement_threshold"]) in text(f)


def test_run_too_short_and_scheduler_mismatch_quote_their_numbers():
    f = diagnose(seed_frame(), SEED_CONFIG).get(RUN_TOO_SHORT_FOR_PATIENCE)
    ev = f.evidence
    assert f"{ev['epochs_run']} epochs" in f.problem and f"patience {ev['patience']}" in f.problem
    assert f"at least {ev['epochs_needed']} epochs" in text(f)
    needed = ev["epochs_needed"]
    assert f.changes[0] == Change("epochs", "higher", needed, f"Train at least {needed} epochs.")
    h = healthy_history()
    for row in h.epochs:
        row["lr"] = 1e-3
    m = diagnose(h, HEALTHY_CONFIG).get(SCHEDULER_MISMATCH)
    assert lr_text(m.evidence["logged_lr"]) in m.problem and lr_text(m.evidence["expected_lr"]) in m.problem


def test_validation_findings_say_how_the_loss_moved():
    d = diagnose(make_history([1.0, 0.7, 0.75, 0.72, 0.78, 0.71, 0.74]), HEALTHY_CONFIG)
    f = d.get(VAL_FLUCTUATING)
    assert num(f.evidence["best"]) in f.problem and f"for {f.evidence['epochs_since_best']} epochs" in f.problem
    assert "moved up and down" in f.problem and "rose in epoch(s) 2, 4 and 6" in f.problem
    assert f.title == "Validation loss fluctuating"
    flat_train = diagnose(make_history([1.0, 0.7, 0.72, 0.74, 0.76], train=[0.5] * 5), HEALTHY_CONFIG)
    assert OVERFITTING not in flat_train.codes  # never "the training loss fell (0.5 → 0.5)"
    rising = flat_train.get(VAL_FLUCTUATING)
    assert rising.title == "Validation loss rising past its best"
    assert "up and down" not in rising.problem and "rose in every epoch since (+8.6% by the last)" in rising.problem
    o = diagnose(make_history([1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.86]), HEALTHY_CONFIG).get(OVERFITTING)
    t = [r["train_loss"] for r in make_history([1.0] * 7).epochs]
    assert f"({num(t[3])} → {num(t[6])})" in o.problem and "(0.72 → 0.86)" in o.problem


def test_training_plateau_quotes_its_change_and_picks_the_fix_from_the_run():
    train_loss = [1.0, 0.8, 0.7, 0.699, 0.6985, 0.698]
    f = diagnose(make_history([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], train=train_loss), HEALTHY_CONFIG).get(TRAIN_LOSS_PLATEAU)
    assert f"improved by {f.evidence['relative_improvement']:.2%}" in f.problem
    assert "Neither heavy clipping nor an LR cut" in f.suggestion and f.changes == []
    worse = [1.0, 0.8, 0.7, 0.71, 0.72, 0.73]
    g = diagnose(make_history([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], train=worse), HEALTHY_CONFIG).get(TRAIN_LOSS_PLATEAU)
    assert "got worse by 1.43%" in g.problem and "improved by -" not in g.problem
    clipped = make_history([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], train=train_loss, norms=growing_norms(6, start=3.0),
                           config=CLIP2)
    c = diagnose(clipped, CLIP2).get(TRAIN_LOSS_PLATEAU)
    assert c.suggestion.startswith("100% of the steps were clipped") and c.changes[0].field == "lr"


def test_step_findings_quote_their_numbers():
    h = healthy_history()
    h.epochs[3]["val_loss"] = float("nan")
    f = diagnose(h, HEALTHY_CONFIG).get(NON_FINITE)
    assert "val_loss (epoch rows): 1 non-finite, first nan at epoch 3" in text(f)
    z = hf_history()
    for r in z.steps[:70]:
        r["grad_norm"] = 0.0
    g = diagnose(z).get(ZERO_GRADIENTS)
    ev = g.evidence
    assert f"{ev['count']} of {ev['steps_with_norm']} steps ({percent(ev['share'])})" in g.problem
    s = hf_history()
    s.steps[50]["grad_norm"] = 9000.0
    s.steps[60]["loss"] = 500.0
    d = diagnose(s)
    spike = d.get(GRADIENT_SPIKES)
    assert f"largest {spike.evidence['largest_ratio']:,.0f}×" in spike.problem and "step 510: 9000" in text(spike)
    loss = d.get(LOSS_SPIKES)
    assert f"{loss.evidence['count']} step(s)" in loss.problem and "came back" in loss.suggestion


def test_gradient_spikes_say_which_ones_clipping_touched():
    norms = [[1.0 + 0.01 * i for i in range(20)] for _ in range(12)]
    norms[6][10] = 15.0
    high = HEALTHY_CONFIG.replace(grad_clip=20.0)
    f = diagnose(make_history(HEALTHY_VAL, norms=norms, config=high), high).get(GRADIENT_SPIKES)
    assert "none of the spikes reached the threshold" in text(f)  # never "clipping scaled each of them"
    low = HEALTHY_CONFIG.replace(grad_clip=5.0)
    g = diagnose(make_history(HEALTHY_VAL, norms=norms, config=low), low).get(GRADIENT_SPIKES)
    assert "clipping scaled each of them down to the threshold (the largest to 0.33333× its length)" in text(g)


# -- the report nests ----------------------------------------------------------------------------------
def test_to_markdown_heading_level():
    d = diagnose(seed_frame(), SEED_CONFIG)
    assert d.to_markdown() == d.to_markdown(heading_level=1)
    nested = d.to_markdown(title="Diagnosis of round1", heading_level=3)
    assert nested.startswith("### Diagnosis of round1\n")
    assert "\n#### Issues identified\n" in nested and "\n##### 1. " in nested
    assert "\n# " not in nested and "\n## " not in nested
    for bad in (0, 5, 2.0, True):
        with pytest.raises(ValueError, match=f"heading_level must be an int from 1 to 4, got {bad!r}"):
            d.to_markdown(heading_level=bad)


# -- measured alternatives, on real tiny runs ----------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    return make_regression(96), make_regression(48, seed=1)


def tiny(data, out=None, **changes):
    (x, y), (xv, yv) = data
    cfg = TrainConfig(**{"epochs": 6, "batch_size": 8, "grad_clip": 0.05, "scheduler": "none", **changes})
    return train(cfg, make_mlp(), (x, y), (xv, yv), out=out, sink=None)


def best(run) -> float:
    return summarize(run.history, run.config)["best_val_loss"]


def test_a_change_measured_worse_is_not_suggested(data):
    base, lower = tiny(data, lr=1e-2), tiny(data, lr=3e-3)
    assert best(lower) > best(base) * 1.01  # measured, not assumed: the lower LR is worse on this task
    plain = diagnose(base.history, base.config).get(HEAVY_CLIPPING)
    assert "Lower the learning rate (e.g. 1e-2 → 5e-3)" in plain.suggestion
    d = diagnose(base.history, base.config, tried=[lower])
    f = d.get(HEAVY_CLIPPING)
    assert "Lower the learning rate" not in f.suggestion
    assert (f"lr 3e-3 was tried: best validation loss {sig(best(lower))} vs {sig(best(base))} here, worse; "
            "not suggested.") in f.suggestion
    (measured,) = f.evidence["tried"]
    assert measured["field"] == "lr" and measured["alternatives"][0]["verdict"] == "worse"
    assert d.alternatives[0]["changes"] == {"lr": 3e-3}
    assert "## Alternatives already measured" in d.to_markdown()
    json.dumps(d.to_dict(), allow_nan=False)


def test_a_better_run_that_moved_the_field_the_other_way_contradicts_the_suggestion(data):
    base, higher = tiny(data, lr=3e-3), tiny(data, lr=1e-2, weight_decay=1e-4)
    assert best(higher) < best(base) * 0.99  # measured: the higher LR (with a second change) is better here
    assert "Lower the learning rate" in diagnose(base.history, base.config).get(HEAVY_CLIPPING).suggestion
    f = diagnose(base.history, base.config, tried=[higher]).get(HEAVY_CLIPPING)
    assert "Lower the learning rate" not in f.suggestion
    assert (f"lr 1e-2 and weight_decay 1e-4 was tried (best validation loss {sig(best(higher))} vs "
            f"{sig(best(base))} here, better): it moved lr the other way; not suggested until a run that "
            "changes lr alone says otherwise.") in f.suggestion
    (measured,) = f.evidence["tried"]
    assert measured["contradicted"] and measured["alternatives"][0]["verdict"] == "better"


def test_a_change_measured_better_is_suggested_with_its_result(data):
    base, lower = tiny(data, lr=0.3), tiny(data, lr=0.1)
    assert best(lower) < best(base) * 0.99
    f = diagnose(base.history, base.config, tried=[lower, base]).get(HEAVY_CLIPPING)
    assert (f"lr 1e-1 was tried: best validation loss {sig(best(lower))} vs {sig(best(base))} here, better; "
            "suggested.") in f.suggestion
    # several changes at once are listed, never credited to one of them
    both = tiny(data, lr=0.1, batch_size=16)
    d = diagnose(base.history, base.config, tried=[both])
    assert "lr 1e-1 was tried" not in d.get(HEAVY_CLIPPING).suggestion
    assert "several changes at once: not credited to any one" in d.alternatives[0]["sentence"]


def test_a_sweep_table_of_seeds(data):
    base = tiny(data, lr=0.3)
    rows = []
    for batch in (8, 16):
        for seed in (0, 1):
            run = tiny(data, lr=0.3, batch_size=batch, seed=seed)
            rows.append({"lr": 0.3, "batch_size": batch, "seed": seed, "best_val_loss": best(run),
                         "status": "completed"})
    rows.append({"lr": 0.3, "batch_size": 32, "seed": 0, "best_val_loss": None, "status": "failed"})  # left out
    d = diagnose(base.history, base.config, tried=pd.DataFrame(rows))
    values = {b: [r["best_val_loss"] for r in rows[:4] if r["batch_size"] == b] for b in (8, 16)}
    same, larger = (sum(values[b]) / 2 for b in (8, 16))
    assert d.alternatives_note.startswith("2 alternative(s)")
    assert f"{sig(same)} for this config (the mean of 2 tried runs" in d.alternatives_note
    record = next(a for a in d.alternatives if a["changes"])
    assert record["changes"] == {"batch_size": 16} and record["best_val_loss"] == pytest.approx(larger)
    overlap = min(values[16]) <= max(values[8]) and min(values[8]) <= max(values[16])
    assert record["ranges_overlap"] is overlap
    verdict = "better" if larger < same * 0.99 else "worse" if larger > same * 1.01 else "about the same"
    assert record["verdict"] == verdict
    f = d.get(VAL_FLUCTUATING)  # this run's validation loss fluctuates: the finding proposes a larger batch
    assert f"batch_size 16 was tried: best validation loss {sig(larger)} (mean of 2 runs" in f.suggestion
    assert ("; suggested." if verdict == "better" else "; not suggested.") in f.suggestion
    assert ("(the runs' ranges overlap)" in f.suggestion) is (overlap and verdict != "about the same")


def test_bad_tried(data):
    h = healthy_history()
    with pytest.raises(TypeError, match="tried must be run folders, runs"):
        diagnose(h, HEALTHY_CONFIG, tried=42)
    with pytest.raises(ValueError, match="a sweep table needs a best_val_loss column"):
        diagnose(h, HEALTHY_CONFIG, tried=pd.DataFrame({"lr": [1e-3]}))


def test_command_line_tried(data, tmp_path, capsys):
    tiny(data, out=tmp_path / "base", lr=1e-2, name="base")
    lower = tiny(data, out=tmp_path / "lower", lr=3e-3, name="lower")
    assert main(["diagnose", str(tmp_path / "base"), "--tried", str(tmp_path / "lower")]) == 0
    out = capsys.readouterr().out
    assert "lr 3e-3 was tried: best validation loss" in out and "not suggested" in out
    assert f"lr 3e-3 (lower; here lr 1e-2): best validation loss {sig(best(lower))}" in out
    assert main(["diagnose", str(tmp_path / "base"), "--tried", str(tmp_path / "lower"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["alternatives"][0]["verdict"] == "worse" and report["alternatives"][0]["runs"] == ["lower"]
    assert math.isclose(report["alternatives"][0]["best_val_loss"], best(lower))


def test_changes_are_stated_with_the_run_s_own_values():
    cfg = HEALTHY_CONFIG.replace(grad_clip=2.0, batch_size=8)
    d = diagnose(make_history([1.0, 0.7, 0.75, 0.72, 0.78, 0.71, 0.74], config=cfg), cfg)
    f = d.get(VAL_FLUCTUATING)
    fields = {(c.field, c.direction, c.advise) for c in f.changes}
    assert ("lr", "lower", "do") in fields and ("batch_size", "higher", "do") in fields
    assert ("scheduler_patience", "lower", "do") in fields  # a plateau run: a shorter patience
    assert "(e.g. 8 → 16)" in f.suggestion and f"(e.g. {sci(cfg.lr)} → {sci(cfg.lr / 2)})" in f.suggestion
    for c in f.changes:
        assert c.text in f.suggestion
    cosine = cfg.replace(scheduler="cosine_warm_restarts")
    g = diagnose(make_history([1.0, 0.7, 0.75, 0.72, 0.78, 0.71, 0.74], config=cosine, lr=[1e-3] * 7), cosine)
    assert "patience" not in g.get(VAL_FLUCTUATING).suggestion

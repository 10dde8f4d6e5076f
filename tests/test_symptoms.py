import pytest

from histories import SEED_CONFIG

from nbtrain import History, diagnose, summarize
from nbtrain.diagnosis.symptoms import round1_symptoms, symptoms_hold


def _history(norms_by_epoch, val, clip=2.0, lr=None):
    steps, epochs, step = [], [], 0
    for e, norms in enumerate(norms_by_epoch):
        for n in norms:
            steps.append({"epoch": e, "step": step, "loss": 1.0, "grad_norm": n, "clipped": n > clip, "lr": 2e-5})
            step += 1
    lrs = lr or [2e-5] * len(val)
    for e, v in enumerate(val):
        epochs.append({"epoch": e, "val_loss": v, "lr": lrs[e], "lr_start": 2e-5 if e == 0 else lrs[e - 1]})
    return History(steps=steps, epochs=epochs)


GROWING = [[0.8, 1.0, 1.2, 2.5]] + [[1.5, 2.2, 3.0, 4.0]] * 4 + [[2.0, 2.5, 3.5, 9.0]] * 2
WRITE_UP_VAL = [0.8294, 0.5869, 0.6093, 0.6127, 0.6011, 0.5884, 0.5950]


def test_the_write_up_pattern_holds():
    table = round1_symptoms(_history(GROWING, WRITE_UP_VAL))
    assert table.holds.all(), table
    assert symptoms_hold(_history(GROWING, WRITE_UP_VAL))
    assert table.set_index("id").loc["2a", "measured"] == 1
    assert table.set_index("id").loc["1b", "measured"] == pytest.approx(9.0 / 2.5)


def test_each_criterion_can_fail():
    healthy_val = [0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4]
    flat = [[1.0, 1.1, 1.2, 1.3]] * 7
    t = round1_symptoms(_history(flat, healthy_val)).set_index("id")
    assert not t.loc["1b", "holds"] and not t.loc["1c", "holds"] and not t.loc["1d", "holds"]
    assert not t.loc["2a", "holds"] and not t.loc["2b", "holds"]
    high_start = [[2.5, 3.0, 3.1, 3.2]] + GROWING[1:]
    assert not round1_symptoms(_history(high_start, WRITE_UP_VAL)).set_index("id").loc["1a", "holds"]
    cut = [2e-5] * 5 + [2e-6] * 2
    assert not round1_symptoms(_history(GROWING, WRITE_UP_VAL, lr=cut)).set_index("id").loc["3", "holds"]


def test_needs_steps_and_enough_epochs():
    h = _history(GROWING, WRITE_UP_VAL)
    with pytest.raises(ValueError, match="needs step rows"):
        round1_symptoms(h.to_dataframe("epoch"))
    short = _history(GROWING[:4], WRITE_UP_VAL[:4])
    with pytest.raises(ValueError, match=r"no steps for epoch\(s\) \[5, 6\]"):
        round1_symptoms(short)


def test_clip_criterion_is_absolute_when_epoch_0_clipped_nothing():
    no_clip_at_0 = [[0.8, 1.0, 1.2, 1.5]] + GROWING[1:]
    row = round1_symptoms(_history(no_clip_at_0, WRITE_UP_VAL)).set_index("id").loc["1d"]
    assert row["measured"] == pytest.approx(0.75)  # the late epochs' share clipped, not an infinite ratio
    assert row["bar"] == ">= 10% of steps" and "epoch 0 clipped none" in row["criterion"] and row["holds"]
    barely = [[0.8, 1.0, 1.2, 1.5]] + [[1.5, 1.6, 1.7, 1.8]] * 6  # nothing clipped late either
    row = round1_symptoms(_history(barely, WRITE_UP_VAL)).set_index("id").loc["1d"]
    assert row["measured"] == 0.0 and not row["holds"]
    relative = round1_symptoms(_history(GROWING, WRITE_UP_VAL)).set_index("id").loc["1d"]
    assert relative["measured"] == pytest.approx(0.75 / 0.25) and relative["bar"] == ">= 2x"


def test_growth_matches_summarize_and_diagnose():
    h = _history(GROWING, WRITE_UP_VAL)
    table = round1_symptoms(h).set_index("id")
    summary = summarize(h, SEED_CONFIG)
    growth = diagnose(h, SEED_CONFIG).get("GRADIENT_GROWTH").evidence
    assert table.loc["1c", "measured"] == summary["grad_norm_growth_p50"] == growth["grad_norm_p50"]["ratio"]
    assert table.loc["1b", "measured"] == summary["grad_norm_growth_max"] == growth["grad_norm_max"]["ratio"]
    assert table.loc["1c", "measured"] == pytest.approx(3.0 / 1.1)  # pooled median of epochs 5-6 over epoch 0's


def test_other_late_epochs_use_the_same_definition():
    t = round1_symptoms(_history(GROWING, WRITE_UP_VAL), late_epochs=(3, 4)).set_index("id")
    assert t.loc["1c", "measured"] == pytest.approx(2.6 / 1.1)  # median of [1.5, 2.2, 3.0, 4.0] twice
    assert t.loc["1b", "measured"] == pytest.approx(4.0 / 2.5)

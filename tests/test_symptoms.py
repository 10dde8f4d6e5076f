import pytest

from nbtrain import History
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

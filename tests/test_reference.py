"""The reference experiment reproduces the round-1 symptoms for the default seed (a real run)."""

import pytest

import nbtrain
from nbtrain import presets
from nbtrain.diagnosis.symptoms import round1_symptoms


@pytest.mark.slow
def test_round1_reproduces_the_three_symptoms_on_the_default_seed():
    lines = []
    run = nbtrain.train(presets.ROUND1, sink=lines.append)
    assert run.status == "completed" and len(run.history.epochs) == 7
    table = round1_symptoms(run.history).set_index("id")
    assert table.holds.all(), table
    assert not any(line.startswith("Learning rate reduced") for line in lines)
    diagnosis = nbtrain.diagnose(run.history, run.config)
    assert {"LR_NOT_ADAPTING", "GRADIENT_GROWTH"} <= set(diagnosis.codes)

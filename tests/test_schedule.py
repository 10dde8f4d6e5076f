"""The LR schedule read from the log, and the plateau checks that run only on plateau schedules.

The LR curves come from torch's real schedulers (``histories.torch_lrs``) and, for Keras's
rule, from Keras's own ``ReduceLROnPlateau`` callback when Keras is installed.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from ci import require
from histories import HEALTHY_CONFIG, hf_history, make_history, step_history, torch_lrs

from nbtrain import History
from nbtrain.diagnosis.diagnostics import diagnose
from nbtrain.diagnosis.findings import LR_NOT_ADAPTING, RUN_TOO_SHORT_FOR_PATIENCE, SCHEDULER_MISMATCH
from nbtrain.diagnosis.plateau import keras_plateau_cuts
from nbtrain.diagnosis.run_data import as_run_data
from nbtrain.diagnosis.schedule import infer_schedule

S = torch.optim.lr_scheduler
PLATEAU_CODES = {LR_NOT_ADAPTING, SCHEDULER_MISMATCH, RUN_TOO_SHORT_FOR_PATIENCE}
STALLED = [1.0, 0.8, 0.7, 0.71, 0.72, 0.73, 0.6, 0.61, 0.62, 0.63, 0.64, 0.5, 0.51]


def _warmup_linear(s: int) -> float:
    return min((s + 1) / 50, (500 - s) / 450)


SCHEDULERS = {
    "constant": (lambda o: S.LambdaLR(o, lambda s: 1.0), "constant"),
    "warmup_linear": (lambda o: S.LambdaLR(o, _warmup_linear), "linear"),
    "linear": (lambda o: S.LinearLR(o, 1.0, 0.0, 500), "linear"),
    "warmup_cosine": (lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.01, 1.0, 50), S.CosineAnnealingLR(o, 450)], [50]),
                      "cosine"),
    "cosine": (lambda o: S.CosineAnnealingLR(o, 500), "cosine"),
    "cosine_cut_short": (lambda o: S.CosineAnnealingLR(o, 1000), "cosine"),
    "one_cycle": (lambda o: S.OneCycleLR(o, 0.1, total_steps=500), "one_cycle"),
    "one_cycle_linear": (lambda o: S.OneCycleLR(o, 0.1, total_steps=500, anneal_strategy="linear"), "one_cycle"),
    "step": (lambda o: S.StepLR(o, 100, 0.5), "step"),
    "multistep": (lambda o: S.MultiStepLR(o, [150, 400], 0.1), "step"),
    "exponential": (lambda o: S.ExponentialLR(o, 0.995), "exponential"),
    "cyclic": (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=50), "cyclic"),
    "warm_restarts": (lambda o: S.CosineAnnealingWarmRestarts(o, 100), "cosine_warm_restarts"),
}


@pytest.mark.parametrize("every", [1, 10])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_torch_schedulers_are_recognised_per_step(name, every):
    make, kind = SCHEDULERS[name]
    lrs = torch_lrs(make, 500)
    h = step_history(lrs)
    h.steps = h.steps[every - 1::every]  # logged every `every` steps, as Hugging Face's logging_steps does
    s = infer_schedule(as_run_data(h))
    assert s.kind == kind, s.description
    assert s.level == "step"
    assert (s.warmup is not None) == name.startswith("warmup"), s.description


def test_schedule_details():
    warm = infer_schedule(as_run_data(step_history(torch_lrs(SCHEDULERS["warmup_linear"][0], 500))))
    assert warm.warmup == 50 and warm.peak == pytest.approx(0.1)
    assert "warmup to 0.1 until step 50, then linear decay" in warm.description
    step = infer_schedule(as_run_data(step_history(torch_lrs(SCHEDULERS["step"][0], 500))))
    assert step.factor == pytest.approx(0.5) and step.cuts == [101, 201, 301, 401]
    assert "step cuts by ×0.5 at steps 101, 201, 301 and 401" in step.description
    assert "no validation loss logged" in step.description


def test_torch_reduce_lr_on_plateau_is_inferred_with_its_settings():
    lrs = torch_lrs(lambda o: S.ReduceLROnPlateau(o, patience=2, factor=0.5), len(STALLED), val=STALLED, lr=1e-3)
    df = pd.DataFrame({"epoch": range(len(STALLED)), "val_loss": STALLED, "lr": lrs})
    d = diagnose(df)
    assert d.settings["scheduler"] == "plateau"
    assert (d.settings["patience"], d.settings["factor"], d.settings["semantics"]) == (2, 0.5, "torch")
    assert d.settings["schedule"]["cuts"] == [5, 9]
    assert any("plateau cuts by ×0.5 at epochs 5 and 9" in a and "torch's ReduceLROnPlateau (patience 2)" in a
               for a in d.assumptions)
    assert SCHEDULER_MISMATCH not in d.codes


def test_nbtrain_run_without_config_is_read_as_its_plateau_scheduler():
    h = make_history([1.0, 0.8, 0.81, 0.82, 0.83, 0.7, 0.71, 0.72], config=HEALTHY_CONFIG)  # patience 2: cut at 4
    h.meta = {}
    d = diagnose(h)
    assert d.settings["scheduler"] == "plateau" and d.settings["patience"] == 2
    f = d.get(LR_NOT_ADAPTING)  # the best at epoch 5, two bad epochs since: torch cuts at the end of epoch 8
    assert f is not None and f.evidence["next_cut_epoch"] == 8 and f.evidence["observed_cuts"] == [4]
    assert SCHEDULER_MISMATCH not in d.codes


def _keras_rows(val: list[float], patience: int) -> list[dict]:
    """Keras's rule, as its CSVLogger logs it: the LR in force DURING each epoch."""
    cuts, lr, rows = keras_plateau_cuts(val, patience), 1e-3, []
    for e, v in enumerate(val):
        rows.append({"epoch": e, "val_loss": v, "lr": lr})
        if e in cuts:
            lr *= 0.5
    return rows


def test_keras_plateau_cuts_one_epoch_earlier_and_is_told_from_torch():
    h = History(epochs=_keras_rows(STALLED, 3), meta={"source": {"format": "keras", "path": "log.csv"}})
    d = diagnose(h)
    s = d.settings
    assert (s["scheduler"], s["patience"], s["semantics"], s["lr_logged"]) == ("plateau", 3, "keras", "during")
    assert not PLATEAU_CODES & set(d.codes)
    assert any("Keras's ReduceLROnPlateau (patience 3)" in a for a in d.assumptions)
    # a stated patience decides between the rules: torch's patience 2 cuts where Keras's 3 does
    d2 = diagnose(h, {"scheduler_patience": 3})
    assert d2.settings["semantics"] == "keras" and d2.settings["patience"] == 3


def test_keras_real_callback_log_is_read_as_keras_plateau(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = require("keras", "Keras 3 is needed to write a real ReduceLROnPlateau log (pip install keras)")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss="mse")
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=3, factor=0.5, verbose=0)
    callback.set_model(model)
    rows = []
    for e, v in enumerate(STALLED):
        logs = {"val_loss": v}
        callback.on_epoch_end(e, logs)  # writes logs["learning_rate"] before it cuts, as CSVLogger records it
        rows.append({"epoch": e, "val_loss": v, "lr": logs["learning_rate"]})
    assert [r["lr"] for r in rows] == pytest.approx([r["lr"] for r in _keras_rows(STALLED, 3)])
    d = diagnose(History(epochs=rows, meta={"source": {"format": "keras", "path": "log.csv"}}))
    assert (d.settings["scheduler"], d.settings["patience"], d.settings["semantics"]) == ("plateau", 3, "keras")
    assert not PLATEAU_CODES & set(d.codes)


def test_evenly_spaced_cuts_are_step_cuts_even_after_stalls():
    val = [1.0, 0.9, 0.91, 0.92, 0.8, 0.81, 0.82, 0.7, 0.71, 0.72, 0.6, 0.61]
    lrs = torch_lrs(lambda o: S.StepLR(o, 3, 0.1), len(val), lr=1e-3)[1:] + [1e-7]
    d = diagnose(pd.DataFrame({"epoch": range(len(val)), "val_loss": val, "lr": lrs}))
    assert d.settings["scheduler"] == "step" and not PLATEAU_CODES & set(d.codes)


def test_two_evenly_spaced_cuts_are_step_cuts_unless_a_default_plateau_replays_them():
    # StepLR(step_size=4) over 10 epochs: a plateau scheduler with patience 0 and cooldown 3 would
    # replay these two cuts too, but a tuned plateau setting is not the simpler reading.
    val = [0.60193, 0.59586, 0.57273, 0.59449, 0.55686, 0.55097, 0.553, 0.55512, 0.55831, 0.55273]
    lrs = torch_lrs(lambda o: S.StepLR(o, 4, 0.3), len(val) + 1, lr=3e-3)[1:]
    d = diagnose(pd.DataFrame({"epoch": range(len(val)), "val_loss": val, "lr": lrs}))
    assert d.settings["scheduler"] == "step" and not PLATEAU_CODES & set(d.codes)
    # two cuts that torch's default ReduceLROnPlateau makes are still read as plateau cuts
    stalled = [1.0, 0.8, 0.81, 0.82, 0.7, 0.71, 0.72, 0.73]
    lrs = torch_lrs(lambda o: S.ReduceLROnPlateau(o, patience=1), len(stalled), val=stalled, lr=1e-3)
    s = infer_schedule(as_run_data(pd.DataFrame({"epoch": range(len(stalled)), "val_loss": stalled, "lr": lrs})))
    assert s.kind == "plateau", s.description


@pytest.mark.parametrize("name", ["warmup_linear", "warmup_cosine", "cosine", "one_cycle"])
def test_plateau_findings_never_on_decay_or_one_cycle(name):
    lrs = torch_lrs(SCHEDULERS[name][0], 500)
    val = [1.0, 0.8, 0.81, 0.79995, 0.805, 0.803, 0.81, 0.82, 0.83, 0.84]  # stalls: the plateau story would fire
    d = diagnose(step_history(lrs, evaluation_every=50, val=val))
    assert not PLATEAU_CODES & set(d.codes)
    assert any("not ReduceLROnPlateau" in n and "LR_NOT_ADAPTING" in n for n in d.not_checked)
    assert d.settings["schedule"]["kind"] == SCHEDULERS[name][1]


def test_hugging_face_log_gets_no_scheduler_mismatch():
    d = diagnose(hf_history(val=[1.0, 0.9, 0.95, 0.97, 0.99]))
    assert not PLATEAU_CODES & set(d.codes)
    assert d.settings["scheduler"] == "linear" and d.settings["lr"] == pytest.approx(5e-5)
    assert any("warmup to 5e-05 until step 100, then linear decay" in a for a in d.assumptions)


def test_no_config_and_no_lr_lists_the_plateau_checks_as_not_checked():
    d = diagnose(pd.DataFrame({"val_loss": [1.0, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85]}))
    assert not PLATEAU_CODES & set(d.codes)
    line = next(n for n in d.not_checked if n.startswith("scheduler unknown"))
    assert all(code in line for code in PLATEAU_CODES)
    assert d.settings["scheduler"] is None and d.settings["schedule"]["kind"] == "unknown"


def test_partial_meta_config_states_only_what_it_has():
    h = hf_history()
    h.meta["config"] = {"grad_clip": 1.0}  # e.g. a Lightning trainer's gradient_clip_val
    d = diagnose(h)
    assert d.settings["grad_clip"] == 1.0 and d.settings["source"] == "history meta"
    assert d.settings["scheduler"] == "linear" and d.settings["schedule"]["source"] == "inferred"
    assert not any("assumed TrainConfig's default" in a for a in d.assumptions)


def test_config_runs_state_their_scheduler_without_inference():
    d = diagnose(make_history([1.0, 0.9, 0.8], config=HEALTHY_CONFIG))
    assert d.settings["schedule"] == {"kind": "plateau", "source": "config"}
    assert not any("inferred from the logged LR" in a for a in d.assumptions)


def test_keras_plateau_cuts_matches_the_keras_rule():
    assert keras_plateau_cuts([1.0, 1.0, 1.0], patience=1) == [1, 2]
    assert keras_plateau_cuts(STALLED, 3) == [5, 9]
    assert keras_plateau_cuts(STALLED, 1, cooldown=2) == [3, 5, 7, 9, 12]  # what Keras 3.15's callback does
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        keras_plateau_cuts(STALLED, -1)


def test_keras_csv_logger_file_is_read_as_keras_plateau(tmp_path, monkeypatch):
    """A real Keras 3 fit (``ReduceLROnPlateau(patience=1)`` before ``CSVLogger``, two appended runs)."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    require("keras", "Keras 3 is needed to write a real CSVLogger file (pip install keras)")
    from real_logs import keras_runs

    from nbtrain.logs import read_log

    path = keras_runs(tmp_path)
    for appended in (0, 1):
        d = diagnose(read_log(path, appended=appended))
        s = d.settings
        assert (s["scheduler"], s["patience"], s["factor"]) == ("plateau", 1, 0.5), s["schedule"]["description"]
        assert (s["semantics"], s["lr_logged"]) == ("keras", "during")
        assert SCHEDULER_MISMATCH not in d.codes


def test_plateau_with_the_lr_logged_per_step_only_is_inferred_without_a_mismatch():
    # Lightning's LearningRateMonitor logs the LR per step; evaluations carry no LR, so the LR after
    # the last evaluation is not in the log: the last cut cannot be seen and must not be expected.
    val = [0.566, 0.5549, 0.5683, 0.5784, 0.5559, 0.5592, 0.5596, 0.5616, 0.5604, 0.5590]
    after = torch_lrs(lambda o: S.ReduceLROnPlateau(o, patience=1, factor=0.3), len(val), val=val, lr=3e-3)
    per_point = [3e-3] + after[:-1]  # the LR in force during each evaluation's steps
    steps = [{"step": 4 * i + k, "epoch": i, "loss": 1.0, "lr": per_point[i]} for i in range(len(val)) for k in range(4)]
    evals = [{"step": 4 * i + 3, "epoch": i, "val_loss": v} for i, v in enumerate(val)]
    d = diagnose(History(steps=steps, epochs=evals))
    assert d.settings["schedule"]["kind"] == "plateau", d.settings["schedule"]["description"]
    assert d.settings["schedule"]["plateau"]["patience"] == 1
    assert SCHEDULER_MISMATCH not in d.codes

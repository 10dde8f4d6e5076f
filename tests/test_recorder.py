"""nbtrain.Recorder: a drop-in for torch's clip_grad_norm_ that records a hand-written loop.

The loop here is an ordinary PyTorch loop; every check compares with the same loop calling
torch's own function, or with values recomputed from the gradients independently.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import nbtrain
from nbtrain.cli import main as cli_main
from nbtrain.recording.gradients import CLIP_EPS


def _data(n=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, :1] * 3 - x[:, 1:2]) + 0.1 * torch.randn(n, 1, generator=g)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def _loop(clip, rec=None, epochs=3, max_norm=3.0, evaluate=True, epoch_end=True, **clip_kwargs):
    """Train with ``clip`` (torch's function or rec.clip_grad_norm_); returns model, norms, losses."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = _data()
    norms, losses = [], []
    for _ in range(epochs):
        for i in range(0, len(x), 8):
            loss = torch.nn.functional.mse_loss(model(x[i:i + 8]), y[i:i + 8])
            opt.zero_grad()
            loss.backward()
            norms.append(clip(model.parameters(), max_norm, **clip_kwargs))
            losses.append(loss.item())
            opt.step()
            if rec is not None:
                rec.step(loss, opt)
        if rec is not None and evaluate:
            with torch.no_grad():
                rec.evaluate(torch.nn.functional.mse_loss(model(x), y))
        sched.step()
        if rec is not None and epoch_end:
            rec.epoch_end()
    return model, norms, losses


@pytest.mark.parametrize("kwargs", [{}, {"foreach": True}, {"foreach": False}, {"norm_type": float("inf")},
                                    {"norm_type": 1.0}])
def test_clip_grad_norm_is_torch_bit_for_bit(tmp_path, quiet, kwargs):
    ref_model, ref_norms, _ = _loop(torch.nn.utils.clip_grad_norm_, **kwargs)
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        model, norms, _ = _loop(rec.clip_grad_norm_, rec, **kwargs)
    for a, b in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(ref_norms, norms))
    recorded = [r["grad_norm"] for r in rec.history.steps]
    assert recorded == [n.item() for n in ref_norms]


def test_records_norm_clip_flags_loss_and_lr_as_recomputed(tmp_path, quiet):
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        _, norms, losses = _loop(rec.clip_grad_norm_, rec)
    steps = rec.history.steps
    assert [r["step"] for r in steps] == list(range(24))
    assert [r["epoch"] for r in steps] == [e for e in range(3) for _ in range(8)]
    assert [r["loss"] for r in steps] == losses
    assert [r["lr"] for r in steps] == [0.2 * 0.5 ** e for e in range(3) for _ in range(8)]
    for row, norm in zip(steps, norms):
        coef = 3.0 / (norm + CLIP_EPS)  # the expression of torch.nn.utils.clip_grads_with_norm_
        assert row["clipped"] == bool(coef < 1)
        assert row["clip_factor"] == (coef.item() if coef < 1 else 1.0)
    assert 0 < sum(r["clipped"] for r in steps) < len(steps)  # the threshold bites on some steps only


def test_norms_equal_an_independent_float64_recomputation(tmp_path, quiet):
    seen = []

    def clip_and_check(params, max_norm):
        params = list(params)
        seen.append(math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params)))
        return rec.clip_grad_norm_(params, max_norm)

    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        _loop(clip_and_check, rec, epochs=1)
    assert [r["grad_norm"] for r in rec.history.steps] == pytest.approx(seen, rel=1e-6)


def test_run_folder_is_an_nbtrain_run_that_diagnoses(tmp_path, quiet, capsys):
    out = tmp_path / "run"
    with nbtrain.Recorder(out, sink=quiet.append) as rec:
        _loop(rec.clip_grad_norm_, rec)
    loaded = nbtrain.load_run(out)
    h = loaded.history
    assert h == rec.history and len(h.epochs) == 3 and len(h.steps) == 24
    assert h.meta["source"] == {"format": "recorder", "path": str(out)}
    assert h.meta["config"] == {"grad_clip": 3.0, "lr": 0.2}
    assert h.meta["evaluation_unit"] == "epoch" and h.meta["columns"] == {} and h.meta["notes"] == []
    assert h.meta["recorder"]["max_norm"] == 3.0
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    assert not (out / "config.json").exists()
    row = h.epochs[1]
    assert row["epoch"] == 1 and row["step"] == 15 and row["n_steps"] == 8
    assert row["lr"] == 0.05 and row["lr_start"] == 0.1  # after the epoch's scheduler step / at its first step
    assert row["train_loss"] == pytest.approx(sum(r["loss"] for r in h.steps[8:16]) / 8)
    assert row["clip_fraction"] == sum(r["clipped"] for r in h.steps[8:16]) / 8
    diagnosis = nbtrain.diagnose(h)
    assert diagnosis.to_markdown()
    capsys.readouterr()
    assert cli_main(["diagnose", str(out)]) == 0
    assert "diagnosis" in capsys.readouterr().out.lower()


def test_epoch_lines_go_to_the_sink_only(tmp_path, capsys):
    lines = []
    with nbtrain.Recorder(tmp_path / "a", sink=lines.append) as rec:
        _loop(rec.clip_grad_norm_, rec, epochs=2)
    assert len(lines) == 3 and lines[0].startswith("epoch 0") and "val" in lines[0]
    with nbtrain.Recorder(tmp_path / "b", sink=None) as rec:
        _loop(rec.clip_grad_norm_, rec, epochs=2)
    assert capsys.readouterr().out == ""


def test_evaluations_without_epochs_are_step_points(tmp_path, quiet):
    out = tmp_path / "run"
    model, x, y = _model(), *_data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with nbtrain.Recorder(out, sink=quiet.append) as rec:
        for i in range(20):
            loss = torch.nn.functional.mse_loss(model(x[:16]), y[:16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss, opt)  # no clip_grad_norm_: loss and LR still recorded
            if i % 5 == 4:
                rec.evaluate(float(i))
    h = nbtrain.load_run(out).history
    assert h.meta["evaluation_unit"] == "step"
    assert [r["step"] for r in h.epochs] == [4, 9, 14, 19]
    assert [r["val_loss"] for r in h.epochs] == [4.0, 9.0, 14.0, 19.0]
    assert all(r["n_steps"] == 5 and "grad_norm_p50" not in r and "clip_fraction" not in r for r in h.epochs)
    assert set(h.steps[0]) == {"step", "loss", "lr"}  # no epoch, no norm: absent, never NaN
    assert "grad_clip" not in h.meta["config"] and h.meta["config"]["lr"] == 1e-2
    assert nbtrain.diagnose(h).to_markdown()


def test_two_evaluations_in_an_epoch_keep_every_evaluation(tmp_path, quiet):
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        for _epoch in range(2):
            for _ in range(2):
                rec.step(1.0)
                rec.evaluate(0.5)
            rec.epoch_end()
    h = rec.history
    assert h.meta["evaluation_unit"] == "step"
    assert [(r["step"], r["val_loss"]) for r in h.epochs] == [(0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5)]


def test_non_finite_values_stay_and_missing_values_are_absent(tmp_path, quiet):
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        rec.step(torch.tensor(float("nan")))
        rec.step(None)
        rec.epoch_end()
    h = nbtrain.load_run(tmp_path / "run").history
    assert math.isnan(h.steps[0]["loss"]) and "loss" not in h.steps[1]
    assert math.isnan(h.epochs[0]["train_loss"]) and "lr" not in h.epochs[0]


def test_grad_scaler_skips_are_recorded_with_unscaled_norms(tmp_path, quiet):
    """torch.amp.GradScaler on the CPU: one step gets an infinite gradient and is skipped."""
    def run(clip, rec=None):
        model, (x, y) = _model(), _data()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=1000)
        norms, weights = [], []
        for i in range(8):
            loss = torch.nn.functional.mse_loss(model(x[i * 8:i * 8 + 8]), y[i * 8:i * 8 + 8])
            opt.zero_grad()
            scaler.scale(loss * (float("inf") if i == 3 else 1.0)).backward()
            scaler.unscale_(opt)
            norms.append(clip(model.parameters(), 1.0))
            scaler.step(opt)
            scaler.update()
            weights.append([p.detach().clone() for p in model.parameters()])
            if rec is not None:
                rec.step(loss, opt, scaler=scaler)
        return norms, weights

    ref_norms, ref_weights = run(torch.nn.utils.clip_grad_norm_)
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        norms, weights = run(rec.clip_grad_norm_, rec)
    assert all(torch.equal(a, b) for wa, wb in zip(ref_weights, weights) for a, b in zip(wa, wb))
    steps = nbtrain.load_run(tmp_path / "run").history.steps
    assert [r["skipped"] for r in steps] == [i == 3 for i in range(8)]
    assert [r["loss_scale"] for r in steps] == [1024.0] * 4 + [512.0] * 4
    assert all(torch.equal(a, b) for a, b in zip(weights[2], weights[3]))  # the skipped step changed nothing
    assert not math.isfinite(steps[3]["grad_norm"])
    finite = [(r["grad_norm"], n.item()) for r, n in zip(steps, ref_norms) if math.isfinite(n.item())]
    assert len(finite) == 7 and all(a == b for a, b in finite)
    assert all(a < 100 for a, _ in finite)  # unscaled: the scale is 1024


def test_one_host_sync_per_step(tmp_path, quiet, monkeypatch):
    model, (x, y) = _model(), _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = nbtrain.Recorder(tmp_path / "run", sink=quiet.append)
    syncs = []
    for name in ("item", "tolist", "__float__", "__bool__", "__int__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            syncs.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for i in range(5):
        loss = torch.nn.functional.mse_loss(model(x[:8]), y[:8])
        opt.zero_grad()
        loss.backward()
        rec.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        rec.step(loss, opt)
    monkeypatch.undo()
    assert syncs == ["tolist"] * 5
    assert len(rec.history.steps) == 5


def test_failed_loop_writes_its_status_and_reraises(tmp_path, quiet):
    with pytest.raises(ZeroDivisionError):
        with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
            rec.step(1.0)
            1 / 0
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "ZeroDivisionError" in status["message"]
    assert len(nbtrain.load_run(tmp_path / "run").history.steps) == 1
    with pytest.raises(RuntimeError, match=r"Recorder.step\(\) after close"):
        rec.step(1.0)


def test_errors_name_the_argument_and_value(tmp_path, quiet):
    with pytest.raises(TypeError, match="out must be a folder path.*int: 3"):
        nbtrain.Recorder(3)
    with pytest.raises(TypeError, match="sink must be callable"):
        nbtrain.Recorder(tmp_path, sink="print")
    rec = nbtrain.Recorder(tmp_path / "run", sink=quiet.append)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    with pytest.raises(TypeError, match="max_norm must be a number, got str: '1'"):
        rec.clip_grad_norm_([p], "1")
    with pytest.raises(ValueError, match="max_norm must be a non-negative number.*-1.0"):
        rec.clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match=r"loss must be a scalar.*shape \(2,\)"):
        rec.step(torch.ones(2))
    with pytest.raises(TypeError, match="loss must be a number.*str: 'x'"):
        rec.step("x")
    with pytest.raises(TypeError, match="optimizer must be a torch optimizer.*object"):
        rec.step(1.0, object())
    with pytest.raises(TypeError, match="val_loss must be a number.*NoneType"):
        rec.evaluate(None)
    p.grad = torch.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):  # torch's own error, passed through
        rec.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_max_norm_inf_records_norms_without_clipping(tmp_path, quiet):
    with nbtrain.Recorder(tmp_path / "run", sink=quiet.append) as rec:
        _loop(rec.clip_grad_norm_, rec, epochs=1, max_norm=float("inf"))
    h = rec.history
    assert h.meta["config"]["grad_clip"] is None
    assert not any(r["clipped"] for r in h.steps) and all(r["clip_factor"] == 1.0 for r in h.steps)

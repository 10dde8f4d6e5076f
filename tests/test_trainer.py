import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import nbtrain
from nbtrain import Callback, StopAfterSteps, TrainConfig, load_checkpoint, train
from nbtrain.training.runfolder import CHECKPOINT_FILE, code_fingerprint, source_fingerprint

from tasks import DropoutNet, PlainDataset, make_mlp, make_regression

CFG = TrainConfig(lr=1e-2, grad_clip=1.0, epochs=3, batch_size=16, scheduler_patience=1, name="tiny")


def _timeless(history):
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history.epochs]


class GradSnapshot(Callback):
    """Keeps a copy of the gradients left in the model after each step."""

    def __init__(self):
        self.grads = []

    def on_step_end(self, trainer, row):
        self.grads.append(torch.cat([p.grad.flatten().clone() for p in trainer.params]))


class ParamSnapshot(Callback):
    def __init__(self):
        self.before = []

    def on_train_begin(self, trainer):
        self.before.append([p.detach().clone() for p in trainer.params])

    def on_step_end(self, trainer, row):
        self.before.append([p.detach().clone() for p in trainer.params])


def test_user_model_trains_and_records_every_step(tiny_task, quiet):
    model, tr, va = tiny_task
    run = train(CFG, model, tr, va, sink=quiet.append)
    h = run.history
    assert run.status == "completed" and run.model is model
    assert len(h.epochs) == 3 and len(h.steps) == 3 * math.ceil(128 / 16)
    assert [r["step"] for r in h.steps] == list(range(len(h.steps)))
    assert h.epochs[-1]["val_loss"] < h.epochs[0]["val_loss"]
    for row in h.steps:
        assert set(row) >= {"epoch", "step", "loss", "grad_norm", "clipped", "clip_factor", "lr"}
    for row in h.epochs:
        assert set(row) >= set(nbtrain.training.history.EPOCH_COLUMNS)
    assert sum(1 for line in quiet if line.startswith("epoch ")) == 3


def test_recorded_norm_is_the_pre_clip_norm_recomputed_independently(quiet):
    x, y = make_regression(64)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    model = make_mlp()
    snaps = ParamSnapshot()
    config = CFG.replace(grad_clip=5.0, epochs=1, lr=5e-2)
    run = train(config, model, loader, TensorDataset(x, y), callbacks=[snaps], sink=quiet.append)
    batches = list(loader)
    clipped = 0
    for row, params, (xb, yb) in zip(run.history.steps, snaps.before, batches):
        probe = make_mlp()
        with torch.no_grad():
            for p, v in zip(probe.parameters(), params):
                p.copy_(v)
        loss = torch.nn.functional.mse_loss(probe(xb), yb)
        grads = torch.autograd.grad(loss, list(probe.parameters()))
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        assert row["grad_norm"] == pytest.approx(norm, rel=1e-5)
        assert row["loss"] == pytest.approx(float(loss.detach()), rel=1e-6)
        # `clipped` agrees with the threshold, and the factor is the one torch applied
        assert row["clipped"] == (norm > 5.0)
        if row["clipped"]:
            clipped += 1
            assert row["clip_factor"] == pytest.approx(5.0 / (norm + 1e-6), rel=1e-6)
        else:
            assert row["clip_factor"] == 1.0
    assert 0 < clipped < len(run.history.steps), "the test should see clipped and unclipped steps"
    assert run.history.epochs[0]["clip_fraction"] == pytest.approx(clipped / len(run.history.steps))


@pytest.mark.parametrize("fused", [True, False], ids=["fused Adam (default)", "PyTorch's default Adam"])
def test_matches_a_hand_written_clip_grad_norm_loop_bit_for_bit(quiet, fused):
    # The trainer scales gradients only on clipped steps; torch's clip_grad_norm_ multiplies
    # by a factor of exactly 1 on the others. The two must give identical weights, with
    # either Adam kernel (fused_adam=True asks for torch's fused=True, False for its default).
    x, y = make_regression(64)
    config = CFG.replace(grad_clip=5.0, epochs=2, lr=5e-2, scheduler="none", batch_size=8, fused_adam=fused)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    run = train(config, make_mlp(), loader, TensorDataset(x, y), sink=quiet.append)
    clipped = [r["clipped"] for r in run.history.steps]
    assert any(clipped) and not all(clipped), "the test needs clipped and unclipped steps"
    assert run.history.meta["adam"] == ("fused" if fused else "default")
    model = make_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, **({"fused": True} if fused else {}))
    for _ in range(config.epochs):
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(model(xb), yb).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip, foreach=True)
            opt.step()
    for a, b in zip(run.model.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_clipping_is_applied_to_the_gradient(quiet):
    x, y = make_regression(32)
    snap = GradSnapshot()
    config = CFG.replace(grad_clip=0.01, epochs=1, batch_size=32)
    run = train(config, make_mlp(), TensorDataset(x, y), TensorDataset(x, y), callbacks=[snap], sink=quiet.append)
    row = run.history.steps[0]
    assert row["clipped"] and row["grad_norm"] > 0.01
    assert float(snap.grads[0].norm()) == pytest.approx(0.01, rel=1e-4)


def test_accumulation_gives_the_gradient_of_one_big_batch(quiet):
    torch.set_default_dtype(torch.float64)
    try:
        x, y = make_regression(96)
        x, y = x.double(), y.double()
        grads = {}
        for batch, accum in ((32, 1), (8, 4), (4, 8)):
            snap = GradSnapshot()
            config = CFG.replace(grad_clip=None, epochs=1, batch_size=batch, grad_accum_steps=accum)
            model = make_mlp().double()
            run = train(config, model, TensorDataset(x, y), TensorDataset(x, y), callbacks=[snap], sink=quiet.append)
            assert len(run.history.steps) == 3
            grads[(batch, accum)] = (snap.grads[0], run.history.steps[0]["loss"])
        ref, ref_loss = grads[(32, 1)]
        for key in ((8, 4), (4, 8)):
            g, loss = grads[key]
            assert float((g - ref).norm() / ref.norm()) < 1e-6, key
            assert loss == pytest.approx(ref_loss, rel=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)


def test_accumulation_weights_a_short_last_micro_batch_by_its_samples(quiet):
    x, y = make_regression(20)  # batch 8, accum 3: micro-batches of 8, 8, 4 form one step
    snap_a, snap_b = GradSnapshot(), GradSnapshot()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    train(CFG.replace(grad_clip=None, epochs=1, grad_accum_steps=3), make_mlp(), loader, TensorDataset(x, y),
          callbacks=[snap_a], sink=quiet.append)
    full = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=False)
    train(CFG.replace(grad_clip=None, epochs=1), make_mlp(), full, TensorDataset(x, y),
          callbacks=[snap_b], sink=quiet.append)
    assert float((snap_a.grads[0] - snap_b.grads[0]).norm() / snap_b.grads[0].norm()) < 1e-5


def test_lr_cuts_happen_when_torchs_scheduler_says_and_are_logged(quiet):
    x, y = make_regression(64)
    xv, yv = make_regression(32, seed=5, noise=2.0)  # noisy validation set: it stalls early
    config = CFG.replace(lr=0.05, epochs=8, scheduler_patience=1, grad_clip=None)
    run = train(config, make_mlp(), TensorDataset(x, y), TensorDataset(xv, yv), sink=quiet.append)
    h = run.history
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.1, threshold=1e-4)
    expected = []
    for row in h.epochs:
        sched.step(row["val_loss"])
        expected.append(opt.param_groups[0]["lr"])
    assert [r["lr"] for r in h.epochs] == expected
    cuts = [r for prev, r in zip([None] + h.epochs, h.epochs) if r["lr"] < (prev or r)["lr_start"]]
    logged = [line for line in quiet if line.startswith("Learning rate reduced: ")]
    assert len(logged) == sum(1 for a, b in zip([0.05] + expected, expected) if b < a) >= 1
    first = next(r for r in h.epochs if r["lr"] < r["lr_start"])
    assert logged[0] == (
        f"Learning rate reduced: {first['lr_start']:.4g} -> {first['lr']:.4g} "
        f"(validation loss: {first['val_loss']:.4f})"
    )
    assert cuts


def test_cosine_warm_restarts_steps_per_batch_with_fractional_epochs(quiet):
    x, y = make_regression(64)
    config = CFG.replace(scheduler="cosine_warm_restarts", cosine_t0=1, epochs=2, lr=0.1, batch_size=16)
    run = train(config, make_mlp(), TensorDataset(x, y), TensorDataset(x, y), sink=quiet.append)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1)
    expected = []
    for epoch in range(2):
        for i in range(4):
            expected.append(opt.param_groups[0]["lr"])
            sched.step(epoch + (i + 1) / 4)
    assert [r["lr"] for r in run.history.steps] == pytest.approx(expected, rel=1e-12)
    assert run.history.steps[1]["lr"] < run.history.steps[0]["lr"]
    assert run.history.steps[4]["lr"] == pytest.approx(0.1)  # restart at each epoch


@pytest.mark.parametrize("scheduler", ["plateau", "cosine_warm_restarts"])
def test_resume_continues_bit_for_bit(tmp_path, quiet, scheduler):
    x, y = make_regression(80)
    xv, yv = make_regression(40, seed=2)
    data = (TensorDataset(x, y), TensorDataset(xv, yv))
    config = CFG.replace(epochs=6, scheduler=scheduler, scheduler_patience=0, grad_clip=0.3)
    whole = train(config, DropoutNet(), *data, sink=quiet.append)
    half = train(config.replace(epochs=3), DropoutNet(), *data, out=tmp_path / "run", sink=quiet.append)
    assert len(half.history.epochs) == 3
    resumed = train(config, DropoutNet(), *data, resume=tmp_path / "run", out=tmp_path / "run", sink=quiet.append)
    assert resumed.history.steps == whole.history.steps
    assert _timeless(resumed.history) == _timeless(whole.history)
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


def test_resume_of_the_compiled_path_continues_where_it_stopped(tmp_path, quiet):
    # The fast path's fused Adam state goes through the checkpoint like the eager one's.
    x, y = make_regression(80)
    data = (TensorDataset(x, y), TensorDataset(x[:40], y[:40]))
    config = CFG.replace(epochs=4, scheduler_patience=0, grad_clip=0.3, compile=True)
    whole = train(config, make_mlp(), *data, sink=quiet.append)
    train(config.replace(epochs=2), make_mlp(), *data, out=tmp_path / "run", sink=quiet.append)
    resumed = train(config, make_mlp(), *data, resume=tmp_path / "run", sink=quiet.append)
    assert len(resumed.history.steps) == len(whole.history.steps)
    for a, b in zip(resumed.history.steps, whole.history.steps):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-7)
        assert a["lr"] == b["lr"] and a["clipped"] == b["clipped"]


def test_resume_refuses_a_different_config(tmp_path, tiny_task, quiet):
    model, tr, va = tiny_task
    train(CFG.replace(epochs=1), model, tr, va, out=tmp_path, sink=quiet.append)
    with pytest.raises(ValueError, match=r"cannot resume: the config differs from the checkpoint's \(lr: checkpoint"):
        train(CFG.replace(lr=0.5), make_mlp(), tr, va, resume=tmp_path, sink=quiet.append)


class NaNAfter:
    """A loss that turns NaN on its n-th call (a stand-in for a diverging run)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, pred, target):
        self.calls += 1
        loss = torch.nn.functional.mse_loss(pred, target)
        return loss * float("nan") if self.calls == self.n else loss


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, quiet):
    x, y = make_regression(64)
    steps_per_epoch = 4
    # calls: 4 training + 1 validation per epoch -> call 13 is epoch 2's 3rd step
    loss_fn = NaNAfter(13)
    run = train(CFG.replace(epochs=5), make_mlp(), TensorDataset(x, y), TensorDataset(x, y), loss_fn=loss_fn,
                out=tmp_path, sink=quiet.append)
    assert run.status == "diverged"
    assert "non-finite loss (nan) at step 10 (epoch 2, batch 2)" in run.message
    assert "last good checkpoint is kept" in run.message
    assert run.message in quiet
    assert len(run.history.epochs) == 2 and len(run.history.steps) == 2 * steps_per_epoch + 2
    assert all(math.isfinite(r["loss"]) for r in run.history.steps)
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 2
    saved = nbtrain.History.load(tmp_path / "history.json")
    assert len(saved.epochs) == 2
    # the model was not updated with the bad gradient
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    # the saved history says why it ended, and the diagnosis reports it
    assert saved.meta["status"] == "diverged" and saved.meta["non_finite_step"]["step"] == 10
    assert "NON_FINITE" in nbtrain.diagnose(saved).codes


def test_checkpoint_survives_a_write_interrupted_midway(tmp_path, tiny_task, quiet, monkeypatch):
    model, tr, va = tiny_task
    train(CFG.replace(epochs=1), model, tr, va, out=tmp_path, sink=quiet.append)
    good = load_checkpoint(tmp_path)
    real_save = torch.save

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train(CFG.replace(epochs=2), make_mlp(), tr, va, out=tmp_path, resume=tmp_path, sink=quiet.append)
    monkeypatch.setattr(torch, "save", real_save)
    after = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert after["epoch"] == good["epoch"] == 1
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="is not an nbtrain checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_stop_flag_ends_after_the_current_step(tiny_task, quiet):
    model, tr, va = tiny_task
    run = train(CFG.replace(epochs=5), model, tr, va, callbacks=[StopAfterSteps(11)], sink=quiet.append)
    assert run.status == "stopped"
    assert len(run.history.steps) == 11
    assert len(run.history.epochs) == 1  # epoch 0 (8 steps) complete; epoch 1 partial: steps only


def test_generic_dataset_gives_the_same_run_as_tensor_dataset(quiet):
    x, y = make_regression(50)
    a = train(CFG, make_mlp(), TensorDataset(x, y), TensorDataset(x, y), sink=quiet.append)
    b = train(CFG, make_mlp(), PlainDataset(x, y), PlainDataset(x, y), sink=quiet.append)
    assert a.history.steps == b.history.steps


def test_same_seed_same_run(tiny_task, quiet):
    _, tr, va = tiny_task
    a = train(CFG, make_mlp(), tr, va, sink=quiet.append)
    b = train(CFG, make_mlp(), tr, va, sink=quiet.append)
    c = train(CFG.replace(seed=1), make_mlp(), tr, va, sink=quiet.append)
    assert a.history.steps == b.history.steps
    assert a.history.steps != c.history.steps


def test_bad_arguments(tiny_task):
    model, tr, va = tiny_task
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train({"lr": 1e-3}, model, tr, va)
    with pytest.raises(ValueError, match="give both train_data and val_data"):
        train(CFG, model, tr)
    with pytest.raises(ValueError, match="train_data was given without a model"):
        train(CFG, None, tr, va)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        train(CFG, "mlp", tr, va)
    with pytest.raises(TypeError, match="data must be a torch Dataset, a DataLoader or a tuple of tensors, got int"):
        train(CFG, model, 3, va)
    with pytest.raises(TypeError, match="callbacks must be nbtrain.Callback instances, got function"):
        train(CFG, model, tr, va, callbacks=[lambda t: None])


def test_reuse_loads_a_completed_run_instead_of_training(tmp_path, tiny_task, quiet):
    model, tr, va = tiny_task
    first = train(CFG, model, tr, va, out=tmp_path, sink=quiet.append)
    counter = StopAfterSteps(10**9)
    again = train(CFG, make_mlp(seed=9), tr, va, out=tmp_path, reuse=True, callbacks=[counter], sink=quiet.append)
    assert again.history == first.history and again.status == "completed"
    assert "loaded from" in again.message
    for a, b in zip(again.model.parameters(), first.model.parameters()):
        assert torch.equal(a, b)
    # a different config trains afresh
    other = train(CFG.replace(seed=4), make_mlp(), tr, va, out=tmp_path / "b", reuse=True, sink=quiet.append)
    assert "loaded" not in other.message and len(other.history.epochs) == CFG.epochs


def test_reuse_of_the_reference_experiment_checks_the_data_task(tmp_path, quiet):
    # A cache made on another reference task (an older nbtrain's data) is not reused.
    config = nbtrain.presets.ROUND1.replace(epochs=1)
    first = train(config, out=tmp_path, sink=quiet.append)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["data"] == nbtrain.reference.data.REFERENCE_TASK.fingerprint() == first.history.meta["data"]
    assert "loaded from" in train(config, out=tmp_path, reuse=True, sink=quiet.append).message
    status["data"] = status["data"].replace("n_val=", "n_val=9")
    (tmp_path / "status.json").write_text(json.dumps(status))
    again = train(config, out=tmp_path, reuse=True, sink=quiet.append)
    assert "loaded" not in again.message  # trained afresh, to the same result
    assert [r["val_loss"] for r in again.history.epochs] == [r["val_loss"] for r in first.history.epochs]


def test_reuse_retrains_a_run_made_by_other_code(tmp_path, tiny_task, quiet):
    # A cache made by another version of nbtrain's code (another fingerprint in status.json,
    # or none: an older nbtrain) is trained afresh, never reused.
    model, tr, va = tiny_task
    first = train(CFG, model, tr, va, out=tmp_path, sink=quiet.append)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["code"] == code_fingerprint()
    assert "loaded from" in train(CFG, make_mlp(), tr, va, out=tmp_path, reuse=True, sink=quiet.append).message
    for recorded in ("0123456789abcdef", None):
        if recorded is None:
            del status["code"]
        else:
            status["code"] = recorded
        (tmp_path / "status.json").write_text(json.dumps(status))
        again = train(CFG, make_mlp(), tr, va, out=tmp_path, reuse=True, sink=quiet.append)
        assert "loaded" not in again.message and again.status == "completed"
        assert again.history.steps == first.history.steps  # trained afresh, to the same result
        assert json.loads((tmp_path / "status.json").read_text())["code"] == code_fingerprint()
        status = json.loads((tmp_path / "status.json").read_text())


def test_code_fingerprint_changes_with_any_source_file_and_the_version(tmp_path):
    package = Path(nbtrain.__file__).resolve().parent
    copy = tmp_path / "nbtrain"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    here = source_fingerprint(copy, nbtrain.__version__)
    assert code_fingerprint.__wrapped__() == source_fingerprint(package, nbtrain.__version__) == here
    assert source_fingerprint(copy, "0.0.0") != here
    module = copy / "training" / "trainer.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    assert source_fingerprint(copy, nbtrain.__version__) != here


def test_fit_can_continue_the_same_trainer(tiny_task, quiet):
    model, tr, va = tiny_task
    trainer = nbtrain.Trainer(CFG.replace(epochs=4), model, tr, va, sink=quiet.append)
    trainer.fit(epochs=2)
    run = trainer.fit(epochs=4)
    whole = train(CFG.replace(epochs=4), make_mlp(), tr, va, sink=quiet.append)
    assert run.history.steps == whole.history.steps
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        trainer.fit(epochs=0)


def test_compiled_path_records_the_same_run_within_float_tolerance(quiet):
    x, y = make_regression(64)
    data = (TensorDataset(x, y), TensorDataset(x, y))
    eager = train(CFG.replace(epochs=2), make_mlp(), *data, sink=quiet.append)
    compiled = train(CFG.replace(epochs=2, compile=True), make_mlp(), *data, sink=quiet.append)
    assert not any("running eager" in line for line in quiet), quiet
    assert len(compiled.history.steps) == len(eager.history.steps)
    for a, b in zip(compiled.history.steps, eager.history.steps):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4, abs=1e-6)
        assert a["clipped"] == b["clipped"] and a["lr"] == b["lr"]
    assert compiled.compile_info == "compiled: forward+loss (torch.compile), fused Adam"


def test_compile_failure_falls_back_to_eager_with_a_message(monkeypatch, tiny_task, quiet):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no working C++ compiler (simulated)")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model, tr, va = tiny_task
    run = train(CFG.replace(compile=True), model, tr, va, sink=quiet.append)
    eager = train(CFG, make_mlp(), tr, va, sink=quiet.append)
    assert run.status == "completed"
    assert "torch.compile failed (no working C++ compiler (simulated)); running eager" in run.compile_info
    assert sum("running eager" in line for line in quiet) == 1
    # the optimizer stays fused: the same run as eager, up to float rounding
    assert len(run.history.steps) == len(eager.history.steps)
    for a, b in zip(run.history.steps, eager.history.steps):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["clipped"] == b["clipped"] and a["lr"] == b["lr"]


def test_without_the_fused_kernel_it_says_so_once_and_runs_default_adam(monkeypatch, tiny_task, quiet):
    real_adam = torch.optim.Adam

    def no_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors (simulated)")
        return real_adam(params, **kwargs)

    _, tr, va = tiny_task
    default = train(CFG.replace(fused_adam=False), make_mlp(), tr, va, sink=quiet.append)
    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    run = train(CFG, make_mlp(), tr, va, sink=quiet.append)
    notes = [line for line in quiet if line.startswith("note:")]
    assert notes == ["note: fused Adam unavailable (`fused=True` requires all the params to be floating point "
                     "Tensors (simulated)); running PyTorch's default Adam"]
    assert run.history.meta["adam"] == "default" and run.history.steps == default.history.steps


def test_a_checkpoint_from_before_fused_adam_resumes_on_the_fused_kernel(tmp_path, tiny_task, quiet):
    # Its optimizer state says fused=None and its config has no fused_adam (the default, True, then applies).
    _, tr, va = tiny_task
    half = train(CFG.replace(epochs=2, fused_adam=False), make_mlp(), tr, va, out=tmp_path, sink=quiet.append)
    state = load_checkpoint(tmp_path)
    del state["config"]["fused_adam"]
    assert state["optimizer"]["param_groups"][0]["fused"] is None
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    trainer = nbtrain.Trainer(CFG.replace(epochs=4), make_mlp(), tr, va, sink=quiet.append)
    trainer.resume_from(tmp_path)
    assert all(g["fused"] is True for g in trainer.optimizer.param_groups)
    assert all(s["step"].dtype == torch.float32 for s in trainer.optimizer.state.values())
    run = trainer.fit()
    assert run.status == "completed" and run.history.meta["adam"] == "fused"
    assert run.history.steps[: len(half.history.steps)] == half.history.steps
    assert len(run.history.epochs) == 4


def test_resume_refuses_the_other_adam_kernel(tmp_path, tiny_task, quiet):
    _, tr, va = tiny_task
    train(CFG.replace(epochs=1), make_mlp(), tr, va, out=tmp_path, sink=quiet.append)
    with pytest.raises(ValueError, match=r"cannot resume: .*fused_adam: checkpoint True vs config False"):
        train(CFG.replace(fused_adam=False), make_mlp(), tr, va, resume=tmp_path, sink=quiet.append)


def test_compile_leaves_the_adam_kernel_to_fused_adam(monkeypatch, tiny_task, quiet):
    # compile=True compiles the forward+loss only; fused_adam=False keeps PyTorch's default Adam under it.
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)  # "compiled" = the eager function
    _, tr, va = tiny_task
    eager = train(CFG.replace(fused_adam=False), make_mlp(), tr, va, sink=quiet.append)
    run = train(CFG.replace(compile=True, fused_adam=False), make_mlp(), tr, va, sink=quiet.append)
    assert run.compile_info == "compiled: forward+loss (torch.compile)"
    assert run.history.meta["adam"] == "default" and run.history.steps == eager.history.steps
    fused = train(CFG.replace(compile=True), make_mlp(), tr, va, sink=quiet.append)
    assert fused.compile_info == "compiled: forward+loss (torch.compile), fused Adam"
    assert fused.history.meta["adam"] == "fused" and fused.history.steps != eager.history.steps

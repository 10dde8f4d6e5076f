"""Devices and precisions in the trainer, tested on the CPU (CI has no GPU).

Device resolution runs with CUDA and MPS availability patched; "bf16-mixed" and "16-mixed"
run for real on the CPU (torch's CPU autocast does both dtypes, and ``GradScaler("cpu")``
skips steps exactly as on a GPU); checkpoints are checked to hold no device tensors and to
resume under another device setting.
"""

import json
import math
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

import nbtrain
from nbtrain import Callback, TrainConfig, Trainer, diagnose, load_checkpoint, train
from nbtrain.diagnosis.findings import NON_FINITE
from nbtrain.training import batches as batches_module
from nbtrain.training import devices, fastpath
from nbtrain.training.checkpoint import restore
from nbtrain.training.precision import MAX_SKIPS_IN_A_ROW
from nbtrain.training.runfolder import CHECKPOINT_FILE, save_checkpoint

from tasks import DropoutNet, PlainDataset, make_mlp, make_regression

CFG = TrainConfig(lr=1e-2, grad_clip=1.0, epochs=3, batch_size=16, scheduler_patience=1, device="cpu", name="tiny")


def _data(n=128, nv=48):
    x, y = make_regression(n)
    xv, yv = make_regression(nv, seed=1)
    return TensorDataset(x, y), TensorDataset(xv, yv)


def _timeless(history):
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history.epochs]


class ParamSnapshot(Callback):
    """The parameters before every step (and after the last), and the gradients each step left."""

    def __init__(self):
        self.before, self.grads = [], []

    def on_train_begin(self, trainer):
        self.before.append([p.detach().clone() for p in trainer.params])

    def on_step_end(self, trainer, row):
        self.before.append([p.detach().clone() for p in trainer.params])
        self.grads.append([p.grad.detach().clone() for p in trainer.params])


class InfGrad(torch.autograd.Function):
    """The identity whose backward is infinite on chosen calls: a finite loss, overflowing gradients."""

    @staticmethod
    def forward(ctx, x, poison):
        ctx.poison = poison
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return (grad * math.inf if ctx.poison else grad), None


class PoisonedLoss:
    """MSE whose gradient is infinite on the training calls listed in ``poisoned`` (all when None)."""

    def __init__(self, poisoned=None):
        self.poisoned, self.calls = poisoned, 0

    def __call__(self, pred, target):
        if not torch.is_grad_enabled():  # validation
            return torch.nn.functional.mse_loss(pred, target)
        poison = self.poisoned is None or self.calls in self.poisoned
        self.calls += 1
        return torch.nn.functional.mse_loss(InfGrad.apply(pred, poison), target)


# -- device resolution ----------------------------------------------------------------------
@pytest.fixture
def machine(monkeypatch):
    """``machine(cuda=N, mps=bool)``: patch what torch reports as available."""

    def set_machine(cuda=0, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(devices, "mps_available", lambda: mps)

    return set_machine


def test_auto_prefers_cuda_then_mps_then_the_cpu(machine):
    machine(cuda=2, mps=True)
    assert devices.resolve_device("auto") == torch.device("cuda", 0)
    assert devices.resolve_device("cuda") == torch.device("cuda", 0)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert devices.available() == ["cpu", "cuda:0", "cuda:1", "mps"]
    machine(cuda=0, mps=True)
    assert devices.resolve_device("auto") == torch.device("mps")
    machine(cuda=0, mps=False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_a_device_that_is_not_there_is_an_error_naming_what_is(machine):
    machine(cuda=0, mps=False)
    for spec in ("cuda", "cuda:0", "mps"):
        with pytest.raises(ValueError, match=rf"device '{spec}' is not available here: this machine has cpu$"):
            devices.resolve_device(spec)
    machine(cuda=2, mps=False)
    with pytest.raises(ValueError, match=r"device 'cuda:2' is not available here: this machine has cpu, cuda:0, cuda:1"):
        devices.resolve_device("cuda:2")
    machine(cuda=0, mps=False)
    with pytest.raises(ValueError, match="device 'cuda' is not available here: this machine has cpu"):
        Trainer(CFG.replace(device="cuda"), make_mlp(), *_data(), sink=None)


def test_bad_device_and_precision_values():
    with pytest.raises(ValueError, match=r"device must be one of .* got 'gpu'"):
        TrainConfig(device="gpu")
    with pytest.raises(ValueError, match=r"device must be one of .* got 'cuda:x'"):
        TrainConfig(device="cuda:x")
    with pytest.raises(ValueError, match=r"precision must be one of '32', 'bf16-mixed', '16-mixed', got 'fp16'"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match=r"precision must be one of .* got 32"):
        TrainConfig(precision=32)
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"):
        devices.resolve_device("tpu")


# -- "32" on the CPU: today's runs --------------------------------------------------------------
def test_32_on_the_cpu_is_the_run_it_always_was(tmp_path, machine):
    # test_trainer.py checks this run against a hand-written torch loop bit for bit; here: the
    # device setting changes nothing on a CPU machine, and the rows carry no scaler fields.
    machine(cuda=0, mps=False)
    a = train(CFG, make_mlp(), *_data(), out=tmp_path / "a", sink=None)
    b = train(CFG.replace(device="auto"), make_mlp(), *_data(), sink=None)
    assert a.history.steps == b.history.steps and _timeless(a.history) == _timeless(b.history)
    assert all(set(r) == {"epoch", "step", "loss", "grad_norm", "clipped", "clip_factor", "lr"} for r in a.history.steps)
    assert "skipped_steps" not in a.history.epochs[0]
    assert a.history.meta["device"] == "cpu" and a.history.meta["precision"] == "32"
    status = json.loads((tmp_path / "a" / "status.json").read_text())
    assert status["device"] == "cpu" and status["precision"] == "32"


def test_only_one_host_read_per_optimizer_step(monkeypatch):
    # On the CPU nothing syncs, but every read of a tensor's value from nbtrain or the loss scaler
    # is where a GPU would: one per step (loss, norm, clip factor, loss scale and skip flag
    # together), one per validation. (Adam's reads of its CPU step counters are not syncs.)
    reads = []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith(("nbtrain", "torch.amp")):
                reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for precision in ("32", "bf16-mixed", "16-mixed"):
        reads.clear()
        run = train(CFG.replace(precision=precision), make_mlp(), *_data(), sink=None)
        assert len(reads) == len(run.history.steps) + len(run.history.epochs), (precision, reads)
        assert reads.count("tolist") == len(run.history.steps)


# -- mixed precision on the CPU -----------------------------------------------------------------
def _replayed_norm(params, x, y, dtype, scale=1.0):
    """The true (unscaled) gradient norm of a step, recomputed by hand from the parameters before it."""
    probe = make_mlp()
    with torch.no_grad():
        for p, v in zip(probe.parameters(), params):
            p.copy_(v)
    with torch.autocast("cpu", dtype=dtype):
        loss = torch.nn.functional.mse_loss(probe(x), y)
    grads = torch.autograd.grad(loss.float() * scale, list(probe.parameters()))
    flat = torch.cat([(g.double() / scale).flatten() for g in grads])
    return float(loss.detach()), float(torch.linalg.vector_norm(flat))


@pytest.mark.parametrize("precision,dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_recorded_norm_is_the_true_norm_recomputed_on_a_replayed_step(precision, dtype):
    x, y = make_regression(64)
    config = CFG.replace(precision=precision, grad_clip=5.0, epochs=1, batch_size=8, lr=5e-2)
    snaps = ParamSnapshot()
    trainer = Trainer(config, make_mlp(), TensorDataset(x, y), TensorDataset(x, y), callbacks=[snaps], sink=None)
    batches = list(trainer.train_batches.epoch(0))
    run = trainer.fit()
    checked = clipped = 0
    for k, row in enumerate(run.history.steps):
        if row.get("skipped"):
            continue
        loss, norm = _replayed_norm(snaps.before[k], *batches[k], dtype, row.get("loss_scale", 1.0))
        assert row["grad_norm"] == pytest.approx(norm, rel=1e-4), k
        assert row["loss"] == pytest.approx(loss, rel=1e-3), k
        # clipping acted on the true gradients: what the step left in .grad has norm min(norm, clip)
        left = math.sqrt(sum(float((g.double() ** 2).sum()) for g in snaps.grads[k]))
        assert left == pytest.approx(min(norm, config.grad_clip), rel=1e-4), k
        assert row["clipped"] == (norm > config.grad_clip)
        checked += 1
        clipped += row["clipped"]
    assert checked >= len(run.history.steps) - 4 and 0 < clipped < checked, "the test needs clipped and unclipped steps"
    if precision == "16-mixed":
        assert all({"loss_scale", "skipped"} <= set(r) for r in run.history.steps)
    else:
        assert not any("skipped" in r or "loss_scale" in r for r in run.history.steps)


def test_bf16_runs_close_to_32():
    a = train(CFG, make_mlp(), *_data(), sink=None)
    b = train(CFG.replace(precision="bf16-mixed"), make_mlp(), *_data(), sink=None)
    assert b.status == "completed" and len(a.history.steps) == len(b.history.steps)
    assert a.history.steps != b.history.steps  # autocast did something
    for ra, rb in zip(a.history.epochs, b.history.epochs):
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=2e-2)
    assert b.history.meta["precision"] == "bf16-mixed"


def test_a_huge_initial_scale_overflows_and_the_steps_are_recorded_as_skipped(tmp_path):
    snaps = ParamSnapshot()
    trainer = Trainer(CFG.replace(precision="16-mixed"), make_mlp(), *_data(), callbacks=[snaps],
                      out=tmp_path / "run", sink=None)
    trainer.precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24)
    run = trainer.fit()
    steps = run.history.steps
    skipped = [r["step"] for r in steps if r["skipped"]]
    assert run.status == "completed" and skipped[:8] == list(range(8)) and len(skipped) < len(steps) // 2
    assert steps[0]["loss_scale"] == 2.0**24
    for r, after in zip(steps, steps[1:]):  # halved after a skip; kept otherwise (growth takes 2000 steps)
        assert after["loss_scale"] == r["loss_scale"] / (2 if r["skipped"] else 1)
    for k, r in enumerate(steps):
        moved = [not torch.equal(a, b) for a, b in zip(snaps.before[k], snaps.before[k + 1])]
        if r["skipped"]:
            assert not math.isfinite(r["grad_norm"]) and math.isfinite(r["loss"]) and not any(moved), k
            assert r["clipped"] is False and r["clip_factor"] == 1.0
        else:
            assert math.isfinite(r["grad_norm"]) and all(moved), k
    per_epoch = [[e, c] for e in range(3) if (c := sum(1 for r in steps if r["skipped"] and r["epoch"] == e))]
    assert [row.get("skipped_steps") for row in run.history.epochs] == [
        sum(1 for r in steps if r["skipped"] and r["epoch"] == e) for e in range(3)]
    # epoch 1 holds skipped steps (infinite norms) and others: its statistics are over the finite norms
    assert 0 < run.history.epochs[1]["skipped_steps"] < 8
    assert run.history.epochs[1]["grad_norm_max"] == max(r["grad_norm"] for r in steps[8:16] if not r["skipped"])
    # the diagnosis: loss-scaler skips, how many and when, not divergence
    f = diagnose(run.history).get(NON_FINITE)
    assert f.severity == "warning" and not f.evidence["divergence"]
    assert f.evidence["skipped_steps"] == len(skipped) and f.evidence["first_skipped_steps"] == skipped[:10]
    assert f.evidence["skipped_per_epoch"] == per_epoch
    assert f"{len(skipped)} step(s)" in f.problem and "the first at step 0" in f.problem
    shown = ", ".join(f"epoch {e}: {c}" for e, c in per_epoch)
    assert f"(per epoch: {shown})" in " ".join(f.evidence_text)
    # the same from the run folder
    assert diagnose(tmp_path / "run").get(NON_FINITE).evidence["skipped_per_epoch"] == per_epoch


def test_the_default_scale_overflows_on_the_first_step_here():
    run = train(CFG.replace(precision="16-mixed"), make_mlp(), *_data(), sink=None)
    assert run.history.steps[0]["loss_scale"] == 65536.0 and run.history.steps[0]["skipped"]
    assert run.status == "completed"


def test_isolated_skips_mid_run_are_not_divergence():
    loss_fn = PoisonedLoss(poisoned={10, 11, 17})
    run = train(CFG.replace(precision="16-mixed"), make_mlp(), *_data(), loss_fn=loss_fn, sink=None)
    assert run.status == "completed"
    skipped = [r["step"] for r in run.history.steps if r["skipped"]]
    assert {10, 11, 17} <= set(skipped)
    scale = {r["step"]: r["loss_scale"] for r in run.history.steps}
    assert scale[11] == scale[10] / 2 and scale[12] == scale[10] / 4 and scale[18] == scale[17] / 2
    assert "non_finite_step" not in run.history.meta


def test_a_scaler_that_keeps_skipping_stops_cleanly_with_the_last_good_checkpoint(tmp_path):
    config = CFG.replace(precision="16-mixed", epochs=10)  # 8 steps an epoch
    lines = []
    run = train(config, make_mlp(), *_data(), loss_fn=PoisonedLoss(), out=tmp_path, sink=lines.append)
    steps = run.history.steps
    assert run.status == "diverged" and len(steps) == MAX_SKIPS_IN_A_ROW + 1
    assert all(r["skipped"] for r in steps)
    assert [r["loss_scale"] for r in steps] == [65536.0 / 2**k for k in range(len(steps))]
    assert f"the fp16 loss scaler skipped more than {MAX_SKIPS_IN_A_ROW} steps in a row (51, the last at step 50 " \
           "(epoch 6, batch 2)" in run.message
    assert "the last good checkpoint is kept" in run.message and run.message in lines
    assert run.history.meta["non_finite_step"]["skipped_in_a_row"] == 51
    assert load_checkpoint(tmp_path)["epoch"] == 6  # epochs 0-5 completed
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "diverged"
    f = diagnose(tmp_path).get(NON_FINITE)
    assert f.severity == "critical" and f.evidence["skipped_steps"] == 51


class NaNAt:
    """MSE that is NaN on the n-th training call (0-based)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, pred, target):
        loss = torch.nn.functional.mse_loss(pred, target)
        if not torch.is_grad_enabled():
            return loss
        self.calls += 1
        return loss * math.nan if self.calls - 1 == self.n else loss


def test_a_non_finite_loss_under_the_scaler_still_stops(tmp_path):
    run = train(CFG.replace(precision="16-mixed"), make_mlp(), *_data(), loss_fn=NaNAt(12), out=tmp_path, sink=None)
    assert run.status == "diverged" and "non-finite loss (nan) at step 12 (epoch 1, batch 4)" in run.message
    assert len(run.history.steps) == 12 and load_checkpoint(tmp_path)["epoch"] == 1


# -- checkpoints ------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_resume_is_bit_for_bit_in_every_precision(tmp_path, precision):
    data = _data(80, 40)
    config = CFG.replace(epochs=6, scheduler_patience=0, grad_clip=0.3, precision=precision)
    whole = train(config, DropoutNet(), *data, sink=None)
    train(config.replace(epochs=3), DropoutNet(), *data, out=tmp_path, sink=None)
    state = load_checkpoint(tmp_path)
    if precision == "16-mixed":
        # the scale after the first skips is part of the run: resuming without it would skip again
        assert state["precision"]["scaler"]["scale"] < 65536.0
        assert any(r["skipped"] for r in whole.history.steps)
    resumed = train(config, DropoutNet(), *data, resume=tmp_path, sink=None)
    assert resumed.history.steps == whole.history.steps
    assert _timeless(resumed.history) == _timeless(whole.history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), whole.model.parameters()))


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def test_checkpoints_hold_only_cpu_tensors_and_plain_values(tmp_path, monkeypatch):
    train(CFG.replace(precision="16-mixed", epochs=1, compile=False), make_mlp(), *_data(), out=tmp_path, sink=None)
    state = load_checkpoint(tmp_path)
    assert all(t.device.type == "cpu" for t in _tensors(state))
    assert state["rng_device"] is None and state["precision"]["precision"] == "16-mixed"
    assert set(state["precision"]["scaler"]) == {"scale", "growth_factor", "backoff_factor", "growth_interval",
                                                  "_growth_tracker"}
    assert all(isinstance(v, (int, float)) for v in state["precision"]["scaler"].values())

    # save_checkpoint moves every tensor it is given to the CPU, however deeply nested
    moved = []
    original = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self: moved.append(self.shape) or original(self))
    save_checkpoint(tmp_path / "x.pt", {"a": torch.ones(2), "b": [torch.zeros(1)], "c": {"d": (torch.ones(3),)}})
    assert sorted(len(m) and m[0] for m in moved) == [1, 2, 3]


def test_a_checkpoint_from_another_device_resumes_here(tmp_path, machine):
    # A checkpoint that says it was written on CUDA (its config's device, its CUDA generator
    # state) resumes on the CPU, under "auto" resolving to the CPU: the same run as one never moved.
    machine(cuda=0, mps=False)
    data = _data(80, 40)
    config = CFG.replace(epochs=4, scheduler_patience=0, grad_clip=0.3, precision="16-mixed")
    whole = train(config.replace(device="auto"), DropoutNet(), *data, sink=None)
    train(config.replace(epochs=2), DropoutNet(), *data, out=tmp_path, sink=None)
    state = load_checkpoint(tmp_path)
    state["config"]["device"] = "cuda:0"
    state["rng_device"] = {"type": "cuda", "state": torch.zeros(16, dtype=torch.uint8)}
    save_checkpoint(tmp_path / CHECKPOINT_FILE, state)
    resumed = train(config.replace(device="auto"), DropoutNet(), *data, resume=tmp_path, out=tmp_path, sink=None)
    assert resumed.history.steps == whole.history.steps
    assert resumed.history.meta["device"] == "cpu"
    assert json.loads((tmp_path / "status.json").read_text())["device"] == "cpu"


def test_resume_refuses_another_precision_but_not_another_device(tmp_path):
    train(CFG.replace(epochs=1), make_mlp(), *_data(), out=tmp_path, sink=None)
    with pytest.raises(ValueError, match=r"cannot resume: .*\(precision: checkpoint '32' vs config '16-mixed'\)"):
        train(CFG.replace(precision="16-mixed"), make_mlp(), *_data(), resume=tmp_path, sink=None)
    trainer = Trainer(CFG.replace(device="auto"), make_mlp(), *_data(), sink=None)
    restore(trainer, load_checkpoint(tmp_path))  # no error: the device may change
    assert trainer.epoch == 1


def test_a_checkpoint_from_before_precisions_still_resumes(tmp_path):
    data = _data()
    whole = train(CFG, make_mlp(), *data, sink=None)
    train(CFG.replace(epochs=1), make_mlp(), *data, out=tmp_path, sink=None)
    state = load_checkpoint(tmp_path)
    for key in ("precision", "rng_device"):
        del state[key]
    del state["config"]["device"], state["config"]["precision"]
    save_checkpoint(tmp_path / CHECKPOINT_FILE, state)
    resumed = train(CFG, make_mlp(), *data, resume=tmp_path, sink=None)
    assert resumed.history.steps == whole.history.steps


# -- data on the device, the compiled path on CUDA -------------------------------------------------------
def test_other_datasets_are_pinned_and_copied_non_blocking_on_cuda(monkeypatch):
    x, y = make_regression(20)
    made, copies = [], []

    class Loader(batches_module.DataLoader):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **{**kwargs, "pin_memory": False})  # no CUDA to pin for here

    def to(self, *args, **kwargs):
        copies.append((args, kwargs))
        return self

    monkeypatch.setattr(batches_module, "DataLoader", Loader)
    monkeypatch.setattr(torch.Tensor, "to", to)
    cuda = torch.device("cuda", 0)
    got = list(batches_module.Batches(PlainDataset(x, y), 8, shuffle=True, seed=0, device=cuda).epoch(0))
    assert len(got) == 3 and made == [{"batch_size": 8, "sampler": made[0]["sampler"], "pin_memory": True}]
    assert copies and all(a == (cuda,) and k == {"non_blocking": True} for a, k in copies)
    assert devices.to_device({"x": x, "y": [y, 3]}, torch.device("cpu"))["y"][1] == 3


def test_tensor_data_lives_on_the_device_and_is_permuted_there():
    x, y = make_regression(20)
    b = batches_module.Batches((x, y), 8, shuffle=True, seed=0, device=torch.device("cpu"))
    assert b.tensors[0] is x  # already there: no copy
    first = [xb for xb, _ in b.epoch(0)]
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))  # today's order, bit for bit
    assert torch.equal(torch.cat(first), x[perm])


def test_the_compiled_path_uses_cuda_graphs_on_cuda_only(monkeypatch):
    assert fastpath.compile_mode(torch.device("cuda", 0)) == "reduce-overhead"
    assert fastpath.compile_mode(torch.device("cpu")) is None
    assert fastpath.compile_mode(torch.device("mps")) is None
    seen, marks = [], []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: seen.append(kwargs) or fn)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    ok = []
    f = fastpath.guarded_compile(lambda a: a + 1, ok.append, pytest.fail, mode="reduce-overhead")
    assert f(1) == 2 and ok[0](2) == 3 and marks == [1, 1]
    assert seen == [{"dynamic": False, "mode": "reduce-overhead"}]
    fastpath.guarded_compile(lambda a: a, ok.append, pytest.fail)
    assert seen[-1] == {"dynamic": False}
    opt = torch.optim.Adam(make_mlp().parameters())
    assert fastpath.compiled_info(opt, "", "reduce-overhead") == "compiled: forward+loss (torch.compile, CUDA graphs)"


def test_compiled_16_mixed_records_the_same_run_as_eager():
    data = _data(64, 32)
    config = CFG.replace(precision="16-mixed", epochs=2)
    eager = train(config, make_mlp(), *data, sink=None)
    compiled = train(config.replace(compile=True), make_mlp(), *data, sink=None)
    assert "running eager" not in compiled.compile_info
    assert [r["skipped"] for r in compiled.history.steps] == [r["skipped"] for r in eager.history.steps]
    assert [r["loss_scale"] for r in compiled.history.steps] == [r["loss_scale"] for r in eager.history.steps]
    for a, b in zip(compiled.history.steps, eager.history.steps):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-5)


def test_model_moves_once_and_the_trainer_says_where():
    model = make_mlp()
    trainer = Trainer(CFG, model, *_data(), sink=None)
    assert trainer.device == torch.device("cpu") and trainer.model is model
    assert devices.model_device(model) == torch.device("cpu")
    assert nbtrain.TrainConfig().device == "auto" and nbtrain.TrainConfig().precision == "32"


# -- the command line ---------------------------------------------------------------------------------
def test_the_command_line_takes_device_and_precision(tmp_path, machine, capsys):
    from nbtrain.cli import main

    out = tmp_path / "r"
    argv = ["train", "--preset", "round1", "--epochs", "1", "--batch-size", "256", "--out", str(out), "--no-progress"]
    assert main(argv + ["--device", "cpu", "--precision", "bf16-mixed"]) == 0
    assert TrainConfig.from_json(out / "config.json").precision == "bf16-mixed"
    status = json.loads((out / "status.json").read_text())
    assert status["device"] == "cpu" and status["precision"] == "bf16-mixed"
    machine(cuda=0, mps=False)
    assert main(argv + ["--overwrite", "--device", "cuda"]) == 2
    assert "error: device 'cuda' is not available here: this machine has cpu" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--device", "gpu"]) == 2
    assert "error: device must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(argv + ["--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err

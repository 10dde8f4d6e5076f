"""The Lightning and Hugging Face callbacks, run inside the real libraries.

Tiny models built here (nothing downloaded), a few dozen optimizer steps each. Every test
checks the recorded values against numbers the framework computed itself or that the test
recomputes from the gradients, that the run folder diagnoses, and, where ``nbtrain.read_log``
exists, that reading the log the framework wrote in the same run gives the same values on the
steps both hold.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import warnings

import pytest
import torch

import nbtrain
from ci import require
from nbtrain import measures
from nbtrain.cli import main as cli_main

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EXTRA = "an optional extra: pip install -e '.[{0}]' (CI installs it with torch kept at the pinned CPU build)"


def _read_log():
    """``nbtrain.read_log``, or skip (fail under CI) when the LOGS layer is not there."""
    if importlib.util.find_spec("nbtrain.logs") is None:
        require("nbtrain.logs", "nbtrain.read_log (nbtrain/logs) is not in this tree")
    return nbtrain.read_log


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, :1] * 3 - x[:, 1:2] ** 2) + 0.1 * torch.randn(n, 1, generator=g)


def _diagnoses(out, capsys):
    history = nbtrain.load_run(out).history
    assert nbtrain.diagnose(history).to_markdown()
    capsys.readouterr()
    assert cli_main(["diagnose", str(out)]) == 0
    assert "diagnosis" in capsys.readouterr().out.lower()
    return history


def _by_step(rows, key):
    return {r["step"]: r[key] for r in rows if key in r and "step" in r}


# -- Lightning ---------------------------------------------------------------------------------
def _lightning_run(tmp_path, callbacks, clip=5.0, epochs=3, accumulate=1, algorithm="norm", fail_at=None,
                   val_check_interval=1.0, plugins=None, poison_at=None, plateau=None):
    pl = require("lightning.pytorch", "Lightning is " + EXTRA.format("lightning"))
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities import grad_norm

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

        def training_step(self, batch, _):
            if self.global_step == fail_at:
                raise FloatingPointError(f"stop at step {fail_at}")
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss * float("inf") if self.global_step == poison_at else loss

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def on_before_optimizer_step(self, optimizer):
            self.log_dict(grad_norm(self, norm_type=2))  # Lightning's own pre-clip norm, into its log

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            if plateau is not None:  # stepped by Lightning at each epoch's end, on the logged val_loss
                sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    x, y = _data(64, 1)
    xv, yv = _data(32, 2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=16)
    trainer = pl.Trainer(max_epochs=epochs, logger=CSVLogger(tmp_path / "logs"), log_every_n_steps=1,
                         callbacks=[LearningRateMonitor("step"), *callbacks], gradient_clip_val=clip, gradient_clip_algorithm=algorithm,
                         accumulate_grad_batches=accumulate, val_check_interval=val_check_interval,
                         plugins=plugins, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, accelerator="cpu", devices=1)
    module = Module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, loader, val)
    return trainer, module


class _NormWitness:
    """A second callback that recomputes the pre-clip norm in float64 from the same gradients."""

    def __init__(self):
        self.norms = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad.double() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(math.sqrt(sum(float((g ** 2).sum()) for g in grads)))


def _witness_callback():
    pl = require("lightning.pytorch", "Lightning is " + EXTRA.format("lightning"))
    return type("Witness", (_NormWitness, pl.Callback), {})()


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory):
    """One Lightning fit with the callback, a float64 witness of the norms and the CSVLogger."""
    from nbtrain.integrations.lightning import NbtrainCallback

    tmp = tmp_path_factory.mktemp("lightning")
    witness = _witness_callback()
    trainer, _ = _lightning_run(tmp, [witness, NbtrainCallback(tmp / "run", sink=None)])
    return trainer, witness, tmp / "run"


def test_lightning_callback_records_pre_clip_norms_losses_lr_and_validation(lightning_run, capsys):
    trainer, witness, out = lightning_run
    h = nbtrain.load_run(out).history
    steps = h.steps
    assert [r["step"] for r in steps] == list(range(24))
    assert [r["epoch"] for r in steps] == [e for e in range(3) for _ in range(8)]
    assert [r["grad_norm"] for r in steps] == pytest.approx(witness.norms, rel=1e-6)
    assert all(r["clipped"] == (r["grad_norm"] + 1e-6 > 5.0) for r in steps)
    assert 0 < sum(r["clipped"] for r in steps) < 24
    assert [r["lr"] for r in steps] == pytest.approx([0.1 * 0.5 ** (i // 5) for i in range(24)], rel=1e-12)
    assert h.meta["source"]["format"] == "lightning-callback"
    assert h.meta["config"] == {"grad_clip": 5.0, "lr": 0.1}
    assert h.meta["evaluation_unit"] == "epoch"
    assert [r["epoch"] for r in h.epochs] == [0, 1, 2] and [r["step"] for r in h.epochs] == [7, 15, 23]
    assert [r["lr"] for r in h.epochs] == pytest.approx([steps[8]["lr"], steps[16]["lr"], 0.1 * 0.5 ** 4])
    assert all(r["n_steps"] == 8 for r in h.epochs)
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    # the framework's own numbers: the logged step losses and validation losses
    assert [r["val_loss"] for r in h.epochs] == pytest.approx(_csv_column(trainer, "val_loss"), rel=1e-7)
    assert [r["loss"] for r in steps] == pytest.approx(_csv_column(trainer, "train_loss_step"), rel=1e-7)
    _diagnoses(out, capsys)


def test_read_log_of_lightnings_csv_matches_the_callback(lightning_run):
    read_log = _read_log()
    trainer, _, out = lightning_run
    logged = read_log(trainer.logger.log_dir)  # the version folder CSVLogger wrote in the same run
    assert logged.meta["source"]["format"] == "lightning"
    recorded = nbtrain.load_run(out).history
    for key, rel in (("grad_norm", 1e-6), ("loss", 0), ("lr", 0)):
        mine, theirs = _by_step(recorded.steps, key), _by_step(logged.steps, key)
        common = sorted(set(mine) & set(theirs))
        assert len(common) >= 20, (key, sorted(theirs))
        assert [mine[s] for s in common] == pytest.approx([theirs[s] for s in common], rel=rel, abs=0), key
    mine, theirs = _by_step(recorded.epochs, "val_loss"), _by_step(logged.epochs, "val_loss")
    assert sorted(theirs) == [7, 15, 23] and mine == theirs


def test_lightning_plateau_cut_after_the_last_epoch_is_recorded_but_not_in_metrics_csv(tmp_path, quiet):
    """Notebook 07's 4 cuts against 3: Lightning steps ReduceLROnPlateau after every epoch's validation,
    the last one's included, and the callback records each epoch's LR after that step; LearningRateMonitor
    logs the LR at the start of each optimizer step, so a cut after the last epoch, with no step after it,
    is in the optimizer and the callback's record but in no row of metrics.csv."""
    from nbtrain.integrations.lightning import NbtrainCallback

    out = tmp_path / "run"
    # no epoch after the first beats the best by 1e9: with patience 0 every later epoch cuts the LR
    plateau = {"patience": 0, "factor": 0.5, "threshold": 1e9, "threshold_mode": "abs"}
    trainer, _ = _lightning_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], plateau=plateau)
    h = nbtrain.load_run(out).history
    torch_lrs = nbtrain.simulate_plateau([r["val_loss"] for r in h.epochs], 0.1, **plateau)
    assert torch_lrs == [0.1, 0.05, 0.025]
    assert [r["lr"] for r in h.epochs] == torch_lrs
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.025  # the LR in force once fit returns
    recorded = measures.lr_cuts([r["lr"] for r in h.epochs], [r["epoch"] for r in h.epochs], start=0.1)
    assert recorded == [(1, 0.1, 0.05), (2, 0.05, 0.025)]
    logged = _csv_pairs(trainer, "lr-SGD")  # (step, LR at the step's start), 8 steps per epoch
    assert [s for s, _ in logged] == list(range(24))
    after = [logged[8 * (e + 1)][1] for e in (0, 1)]  # epoch e's LR after its scheduler step: epoch e+1's first
    assert measures.lr_cuts(after, [0, 1], start=logged[0][1]) == recorded[:-1]  # all but the last epoch's cut
    assert min(lr for _, lr in logged) == 0.05  # 0.025 never reached a row: no step came after that cut


def _csv_pairs(trainer, name):
    import csv

    with open(os.path.join(trainer.logger.log_dir, "metrics.csv"), newline="") as fh:
        return [(int(r["step"]), float(r[name])) for r in csv.DictReader(fh) if r.get(name)]


def _csv_column(trainer, name):
    import csv

    with open(os.path.join(trainer.logger.log_dir, "metrics.csv"), newline="") as fh:
        return [float(r[name]) for r in csv.DictReader(fh) if r.get(name)]


def test_lightning_callback_does_not_change_training(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    _, plain = _lightning_run(tmp_path / "a", [], epochs=1)
    _, recorded = _lightning_run(tmp_path / "b", [NbtrainCallback(tmp_path / "run", sink=quiet.append)], epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), recorded.parameters()))


def test_lightning_accumulation_sums_the_micro_batches(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    pl = require("lightning.pytorch", "Lightning is " + EXTRA.format("lightning"))
    witness = _witness_callback()
    outputs = []

    class Losses(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, out, batch, batch_idx):
            outputs.append(float(out["loss"]))  # Lightning divides it by accumulate_grad_batches

    out = tmp_path / "run"
    _lightning_run(tmp_path, [witness, Losses(), NbtrainCallback(out, sink=quiet.append)], epochs=1, accumulate=2)
    steps = nbtrain.load_run(out).history.steps
    assert [r["step"] for r in steps] == [0, 1, 2, 3]
    assert [r["grad_norm"] for r in steps] == pytest.approx(witness.norms, rel=1e-6)
    assert [r["loss"] for r in steps] == pytest.approx([outputs[i] + outputs[i + 1] for i in range(0, 8, 2)], rel=1e-6)


def test_lightning_value_clipping_records_norms_without_clip_flags(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    out = tmp_path / "run"
    _lightning_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], clip=0.05, epochs=1, algorithm="value")
    h = nbtrain.load_run(out).history
    assert all("grad_norm" in r and "clipped" not in r for r in h.steps)
    assert "grad_clip" not in h.meta["config"]
    assert any("clipped by value" in n for n in h.meta["notes"])


def test_lightning_validation_inside_epochs_gives_step_points(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    out = tmp_path / "run"
    _lightning_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], epochs=2, val_check_interval=0.5)
    h = nbtrain.load_run(out).history
    assert h.meta["evaluation_unit"] == "step"
    assert [(r["step"], r["epoch"], r["n_steps"]) for r in h.epochs] == [(3, 0, 4), (7, 0, 4), (11, 1, 4), (15, 1, 4)]


def test_lightning_exception_writes_a_failed_run(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    out = tmp_path / "run"
    with pytest.raises(FloatingPointError):
        _lightning_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], fail_at=11)
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and "stop at step 11" in status["message"]
    h = nbtrain.load_run(out).history
    assert len(h.steps) == 11 and len(h.epochs) == 1


def test_lightning_fp16_loss_scaler_skips_are_recorded(tmp_path, quiet):
    from nbtrain.integrations.lightning import NbtrainCallback

    require("lightning.pytorch", "Lightning is " + EXTRA.format("lightning"))
    from lightning.pytorch.plugins.precision import MixedPrecision

    witness = _witness_callback()
    out = tmp_path / "run"
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    _lightning_run(tmp_path, [witness, NbtrainCallback(out, sink=quiet.append)], epochs=1, poison_at=3,
                   plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    steps = nbtrain.load_run(out).history.steps
    assert [r["skipped"] for r in steps] == [i == 3 for i in range(8)]
    assert [r["loss_scale"] for r in steps] == [1024.0] * 4 + [512.0] * 4
    assert not math.isfinite(steps[3]["grad_norm"])
    finite = [(r["grad_norm"], w) for r, w in zip(steps, witness.norms) if math.isfinite(w)]
    assert len(finite) == 7 and [a for a, _ in finite] == pytest.approx([w for _, w in finite], rel=1e-6)  # unscaled


def test_integration_modules_import_without_their_frameworks():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['lightning'] = sys.modules['lightning.pytorch'] = sys.modules['transformers'] = None\n"
        "import nbtrain.integrations.lightning as L, nbtrain.integrations.transformers as T\n"
        "for m, extra in ((L, 'lightning'), (T, 'transformers')):\n"
        "    try:\n"
        "        m.NbtrainCallback\n"
        "    except ImportError as exc:\n"
        "        assert f\"nbtrain[{extra}]\" in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError('no ImportError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- Hugging Face Trainer ----------------------------------------------------------------------
def _hf_run(tmp_path, callbacks, logging_steps=1, accumulate=1, max_grad_norm=1.0, epochs=2):
    transformers = require("transformers", "transformers is " + EXTRA.format("transformers"))
    require("accelerate", "the Hugging Face Trainer needs accelerate, " + EXTRA.format("transformers"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)  # built from the config: nothing downloaded
    ids = torch.randint(0, 32, (48, 8), generator=torch.Generator().manual_seed(3))
    train = [{"input_ids": r, "labels": r} for r in ids[:32]]
    val = [{"input_ids": r, "labels": r} for r in ids[32:]]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), per_device_train_batch_size=4, gradient_accumulation_steps=accumulate,
        num_train_epochs=epochs, learning_rate=1e-2, lr_scheduler_type="linear", warmup_steps=2,
        max_grad_norm=max_grad_norm, logging_steps=logging_steps, eval_strategy="steps", eval_steps=5,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0, data_seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    trainer.save_state()  # the Trainer's own log: output_dir/trainer_state.json
    return trainer


def _hf_log(trainer, key):
    return {e["step"]: e[key] for e in trainer.state.log_history if key in e}


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """One Trainer run with the callback, logging every step (its log then holds every step too)."""
    from nbtrain.integrations.transformers import NbtrainCallback

    tmp = tmp_path_factory.mktemp("hf")
    return _hf_run(tmp, [NbtrainCallback(tmp / "run", sink=None)]), tmp / "run"


def _check_hf_records(trainer, out, n, clip):
    h = nbtrain.load_run(out).history
    assert [r["step"] for r in h.steps] == list(range(1, n + 1))  # the Trainer's global_step after the step
    assert [r["epoch"] for r in h.steps] == pytest.approx([2 * s / n for s in range(1, n + 1)])
    # the Trainer's own pre-clip norm (its clip_grad_norm_'s return value) and step loss, logged on
    # every step here: the same floats (on the CPU the per-parameter norms add up in the same order)
    assert _by_step(h.steps, "grad_norm") == _hf_log(trainer, "grad_norm")
    assert _by_step(h.steps, "lr") == _hf_log(trainer, "learning_rate")
    assert _by_step(h.steps, "loss") == _hf_log(trainer, "loss")
    assert all(r["clipped"] == (r["grad_norm"] + 1e-6 > clip) for r in h.steps)
    assert 0 < sum(r["clipped"] for r in h.steps) < n
    assert _by_step(h.epochs, "val_loss") == _hf_log(trainer, "eval_loss")
    assert [r["step"] for r in h.epochs] == [s for s in (5, 10, 15) if s <= n] + ([] if n in (5, 10, 15) else [n])
    assert h.meta["source"]["format"] == "transformers-callback"
    assert h.meta["config"] == {"grad_clip": clip, "lr": 1e-2} and h.meta["evaluation_unit"] == "step"
    assert json.loads((out / "status.json").read_text())["status"] == "completed"
    return h


def test_transformers_callback_records_what_the_trainer_computes(hf_run, capsys):
    trainer, out = hf_run
    _check_hf_records(trainer, out, 16, 1.0)
    _diagnoses(out, capsys)


def test_transformers_callback_with_gradient_accumulation(tmp_path, quiet):
    from nbtrain.integrations.transformers import NbtrainCallback

    out = tmp_path / "run"
    trainer = _hf_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], accumulate=2, max_grad_norm=0.7)
    _check_hf_records(trainer, out, 8, 0.7)  # the loss: GPT-2 normalizes by the step's token count


def test_read_log_of_the_trainers_state_matches_the_callback(hf_run):
    read_log = _read_log()
    trainer, out = hf_run
    logged = read_log(trainer.args.output_dir)  # the output folder: trainer_state.json from save_state()
    assert logged.meta["source"]["format"] == "huggingface"
    recorded = nbtrain.load_run(out).history
    for key in ("grad_norm", "loss", "lr"):
        mine, theirs = _by_step(recorded.steps, key), _by_step(logged.steps, key)
        assert sorted(theirs) == list(range(1, 17)) and mine == theirs, key
    mine, theirs = _by_step(recorded.epochs, "val_loss"), _by_step(logged.epochs, "val_loss")
    assert sorted(theirs) == [5, 10, 15, 16] and mine == theirs


def test_transformers_callback_records_every_step_not_only_logging_steps(tmp_path, quiet):
    from nbtrain.integrations.transformers import NbtrainCallback

    out = tmp_path / "run"
    trainer = _hf_run(tmp_path, [NbtrainCallback(out, sink=quiet.append)], logging_steps=4)
    steps = nbtrain.load_run(out).history.steps
    logged = _hf_log(trainer, "grad_norm")
    assert len(steps) == 16 and sorted(logged) == [4, 8, 12, 16]
    by_step = {r["step"]: r for r in steps}
    assert {s: by_step[s]["grad_norm"] for s in logged} == pytest.approx(logged, rel=1e-6)
    # the Trainer logs the mean loss since its previous log; the recorder has each step's
    window_means = {s: sum(by_step[k]["loss"] for k in range(s - 3, s + 1)) / 4 for s in logged}
    assert window_means == pytest.approx(_hf_log(trainer, "loss"), rel=1e-5)


def test_transformers_callback_does_not_change_training(tmp_path, quiet):
    from nbtrain.integrations.transformers import NbtrainCallback

    plain = _hf_run(tmp_path / "a", [], epochs=1)
    recorded = _hf_run(tmp_path / "b", [NbtrainCallback(tmp_path / "run", sink=quiet.append)], epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), recorded.model.parameters()))

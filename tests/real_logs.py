"""Real training logs, written by the real libraries on tiny models (seconds each).

Every log the read_log tests read comes from here: a Hugging Face ``Trainer`` run
(``trainer_state.json`` in its output and checkpoint folders, and the TensorBoard events
its callback writes), Lightning runs with ``CSVLogger`` (``metrics.csv``), Keras 3 on the
torch backend with ``keras.callbacks.CSVLogger`` (twice into one file, ``append=True``),
nbtrain's own run folder, sweep trial and ``TensorBoardCallback`` events. Nothing is
downloaded: the models are built in this file. Tests may transform a real file for an edge
case (line endings, blank cells), never type a log by hand.

Each function trains into the folder it is given and returns the paths a test needs.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from tasks import make_mlp, make_regression


# -- Hugging Face ------------------------------------------------------------------------
class _HFData(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.x, self.y = make_regression(n, seed=seed)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "labels": self.y[i]}


class _HFModel(torch.nn.Module):
    """A model the Trainer accepts: keyword inputs in, ``{"loss", "logits"}`` out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_mlp()

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def huggingface_run(out: Path, *, diverge: bool = False) -> Path:
    """A Trainer run into ``out``; returns ``out``.

    Normal: 40 steps of 8 samples (7.5 steps an epoch: fractional epochs), a log every 3
    steps, an evaluation every 10, checkpoints at 20 and 40, warmup then linear decay, clip
    1.0, TensorBoard events under ``out/runs``, and ``trainer_state.json`` saved in ``out``.
    ``diverge``: SGD at LR 3 without clipping, a log every step and NaN/inf not filtered, so
    the file holds Python's ``NaN`` and ``Infinity`` tokens; no TensorBoard.
    """
    from transformers import Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    common = dict(output_dir=str(out), per_device_train_batch_size=8, per_device_eval_batch_size=16,
                  eval_strategy="steps", eval_steps=10, save_strategy="steps", save_steps=20, use_cpu=True,
                  seed=0, dataloader_num_workers=0, disable_tqdm=True, lr_scheduler_type="linear")
    if diverge:
        args = TrainingArguments(max_steps=24, learning_rate=3.0, optim="sgd", max_grad_norm=0.0, logging_steps=1,
                                 logging_nan_inf_filter=False, report_to=[], **common)
    else:
        args = TrainingArguments(max_steps=40, learning_rate=1e-2, warmup_steps=5, max_grad_norm=1.0,
                                 logging_steps=3, report_to=["tensorboard"], **common)
    torch.manual_seed(0)
    trainer = Trainer(model=_HFModel(), args=args, train_dataset=_HFData(60, 0), eval_dataset=_HFData(32, 1))
    trainer.train()
    trainer.save_state()
    return out


# -- Lightning ---------------------------------------------------------------------------
def _lightning_module(variant: str):
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import grad_norm

    class Regression(pl.LightningModule):
        def __init__(self, lr: float = 1e-2, gradient_clip_val: float | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = make_mlp()

        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            if variant == "a":
                self.log("train_loss", loss, on_step=True, on_epoch=True)
            else:
                self.log("loss", loss)
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss" if variant == "a" else "valid_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def on_before_optimizer_step(self, optimizer):
            if variant == "a":
                self.log_dict(grad_norm(self, norm_type=2))

        def configure_optimizers(self):
            if variant == "a":
                opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            first, second = self.net[0], self.net[2]
            return torch.optim.SGD([{"params": first.parameters()},
                                    {"params": second.parameters(), "lr": self.hparams.lr / 10}], lr=self.hparams.lr)

    return Regression


def lightning_run(out: Path, variant: str = "a") -> Path:
    """A Lightning run with ``CSVLogger(out)``; returns its version folder.

    Variant ``"a"``: ``train_loss`` on step and epoch (``train_loss_step``/``_epoch``),
    ``val_loss`` every 4 steps (two evaluations an epoch), AdamW with a StepLR cut every 10
    steps (``lr-AdamW``), ``grad_norm`` columns (``grad_2.0_norm_total`` ...), clip 1.0 in
    ``hparams.yaml``; 4 epochs of 8 steps. Variant ``"b"``: ``loss`` per step,
    ``valid_loss`` once an epoch, SGD with two parameter groups (``lr-SGD/pg1``,
    ``lr-SGD/pg2``); 3 epochs.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    x, y = make_regression(64)
    xv, yv = make_regression(32, seed=1)
    loader = torch.utils.data.DataLoader
    logger = CSVLogger(str(out))
    clip = 1.0 if variant == "a" else None
    trainer = pl.Trainer(max_epochs=4 if variant == "a" else 3, logger=logger,
                         callbacks=[LearningRateMonitor(logging_interval="step")], log_every_n_steps=1,
                         val_check_interval=4 if variant == "a" else 1.0, gradient_clip_val=clip,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1)
    torch.manual_seed(0)
    module = _lightning_module(variant)(gradient_clip_val=clip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, loader(TensorDataset(x, y), batch_size=8), loader(TensorDataset(xv, yv), batch_size=16))
    return Path(logger.log_dir)


# -- Keras 3 on the torch backend --------------------------------------------------------
def keras_runs(out: Path) -> Path:
    """Two Keras fits logged by ``CSVLogger`` into one file, the second with ``append=True``
    (a fresh model: its epoch counter restarts at 0). ``ReduceLROnPlateau`` runs before the
    logger, so the file has a ``learning_rate`` column. Returns the CSV file."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras runs on the {keras.backend.backend()!r} backend; set KERAS_BACKEND=torch first")
    keras.utils.set_random_seed(0)
    x, y = (t.numpy().astype(np.float32) for t in make_regression(64))
    path = Path(out) / "training.log.csv"

    def fit(epochs: int, append: bool) -> None:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(3e-2), loss="mse", metrics=["mae"])
        callbacks = [keras.callbacks.ReduceLROnPlateau(patience=1, factor=0.5),
                     keras.callbacks.CSVLogger(str(path), append=append)]
        with warnings.catch_warnings():  # numpy 2's copy= deprecation inside Keras's torch backend
            warnings.simplefilter("ignore", DeprecationWarning)
            model.fit(x, y, validation_split=0.25, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)

    fit(8, append=False)
    fit(4, append=True)
    return path


# -- nbtrain's own folders and TensorBoard events ----------------------------------------
def nbtrain_run(out: Path, tensorboard: Path | None = None) -> Path:
    """``nbtrain.train`` on the tiny regression into ``out`` (3 epochs, clip 1.0), with
    ``TensorBoardCallback(tensorboard)`` when given. Returns ``out``."""
    from nbtrain import TrainConfig, train

    callbacks = []
    if tensorboard is not None:
        from nbtrain import TensorBoardCallback

        callbacks.append(TensorBoardCallback(tensorboard))
    x, y = make_regression(64)
    xv, yv = make_regression(32, seed=1)
    config = TrainConfig(lr=3e-2, epochs=3, batch_size=16, grad_clip=1.0, name="tiny")
    train(config, make_mlp(), TensorDataset(x, y), TensorDataset(xv, yv), out=out, callbacks=callbacks, sink=None)
    return out


def sweep_model(seed: int) -> torch.nn.Module:
    return make_mlp(seed=seed)


def sweep_data(seed: int):
    x, y = make_regression(64, seed=10 + seed)
    xv, yv = make_regression(32, seed=20 + seed)
    return TensorDataset(x, y), TensorDataset(xv, yv)


def sweep_trial(out: Path) -> Path:
    """One sweep trial run in this process (``run_trial``): a run folder with ``done.json``."""
    from nbtrain import TrainConfig
    from nbtrain.sweeps.plan import plan
    from nbtrain.sweeps.trial import run_trial

    (trial,) = plan(TrainConfig(lr=1e-2, epochs=2, batch_size=16, grad_clip=1.0), {"lr": [1e-2]}, [0], out)
    row = run_trial(trial, sweep_model, sweep_data, single_thread=False)
    if row["status"] != "completed":
        raise RuntimeError(f"the sweep trial did not complete: {row}")
    return Path(trial.run_dir)

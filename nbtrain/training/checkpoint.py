"""What a trainer's checkpoint holds, and restoring a trainer from one.

A checkpoint (written by ``runfolder.save_checkpoint``, every tensor on the CPU) is a dict:
``format``, ``config``, ``epoch`` (the next epoch to run), ``global_step``, the ``model``,
``optimizer`` and ``scheduler`` state dicts, ``rng_torch`` (the CPU generator), ``rng_device``
(the CUDA or MPS generator; None on the CPU), ``precision`` (the loss scaler's state and its
run of skipped steps; absent in checkpoints from before precisions) and the ``history``.

Restoring loads the states into a trainer whose model and optimizer already live on its
device (``load_state_dict`` copies into the parameters; the optimizer moves its state to
them), so a run saved on one device resumes on another. The device generator is restored on
a device of the same type only; on the same device a resumed run continues bit for bit.
"""

from __future__ import annotations

import torch

from .devices import rng_state, set_rng_state
from .history import History
from .runfolder import CHECKPOINT_FORMAT, check_resumable


def trainer_state(trainer) -> dict:
    """The checkpoint of a ``Trainer`` (see the module's docstring)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": trainer.config.to_dict(),
        "epoch": trainer.epoch,
        "global_step": trainer.global_step,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "rng_torch": torch.get_rng_state(),
        "rng_device": rng_state(trainer.device),
        "precision": trainer.precision.state_dict(),
        "history": trainer.history.to_dict(),
    }


def restore(trainer, state: dict) -> None:
    """Load a checkpoint into ``trainer`` (its config must match: ``runfolder.check_resumable``)."""
    check_resumable(state["config"], trainer.config)
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state["scheduler"] is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_torch"])
    set_rng_state(state.get("rng_device"), trainer.device)
    trainer.precision.load_state_dict(state.get("precision"))
    trainer.epoch = int(state["epoch"])
    trainer.global_step = int(state["global_step"])
    trainer.history = History.from_dict(state["history"])
    trainer.history.meta["config"] = trainer.config.to_dict()
    trainer.history.meta["device"] = str(trainer.device)
    trainer.history.meta["precision"] = trainer.config.precision


__all__ = ["restore", "trainer_state"]

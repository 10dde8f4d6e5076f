"""``NbtrainCallback``: a Lightning callback that writes an nbtrain run folder.

    from nbtrain.integrations.lightning import NbtrainCallback
    trainer = lightning.pytorch.Trainer(gradient_clip_val=1.0, callbacks=[NbtrainCallback("runs/mine")])
    trainer.fit(model, train_loader, val_loader)
    nbtrain.diagnose(nbtrain.load_run("runs/mine").history)

What it records (``lightning.pytorch``, imported when ``NbtrainCallback`` is first used):

- per optimizer step (``on_before_optimizer_step``, which Lightning calls after unscaling
  AMP gradients and BEFORE it clips): the total 2-norm of the gradients of the parameters
  Lightning clips (``trainer.precision_plugin.main_params(optimizer)``), computed as
  ``torch.nn.utils.clip_grad_norm_`` computes it; ``clipped``/``clip_factor`` from
  ``trainer.gradient_clip_val`` with torch's clip coefficient (not defined, so not
  written, when ``gradient_clip_algorithm="value"``); the LR of the optimizer's first
  param group; ``step`` = ``trainer.global_step`` before the step (0-based, the step
  CSVLogger writes that step's metrics at); ``epoch`` = ``trainer.current_epoch``;
- per step, the training loss: the sum of ``training_step``'s returned ``loss`` over the
  step's micro-batches (Lightning divides each by ``accumulate_grad_batches``, so this is
  their mean), else ``trainer.callback_metrics[train_loss_key]``;
- with a GradScaler (``precision="16-mixed"``): ``loss_scale`` and ``skipped``;
- per validation run during ``fit`` (not the sanity check): ``callback_metrics[val_loss_key]``
  at the step of the last optimizer step before it, and the epoch;
- per epoch end: the epoch's statistics and the LR in force after its scheduler step.

The run folder (``history.json``, ``status.json``) is written atomically at each epoch end
and when fitting ends (status "completed", or "failed"/"interrupted" on an exception), on
global rank 0 only. One host sync per optimizer step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..recording.gradients import (ScaleTracker, clip_coefficient, first_lr, host_values, pre_clip_norm,
                                   scaler_scale, step_row)
from ..recording.runlog import RunLog
from .lazy import module_getattr

VAL_LOSS_KEYS = ("val_loss", "val/loss", "valid_loss", "validation_loss", "val_loss_epoch")
TRAIN_LOSS_KEYS = ("train_loss_step", "train_loss", "loss", "train/loss")


class _Recording:
    """The callback's hooks; ``NbtrainCallback`` mixes them into ``lightning.pytorch.Callback``.

    ``out``: the run folder; ``sink``: where its lines go (None: silent); ``val_loss_key`` /
    ``train_loss_key``: the ``callback_metrics`` names of the validation / training loss
    (default: the first of ``VAL_LOSS_KEYS`` / ``TRAIN_LOSS_KEYS`` present). The records are
    in ``runlog`` (Lightning sets every callback's ``log`` to the module's ``log``).
    """

    def __init__(self, out: Any, sink: Any = print, val_loss_key: str | None = None,
                 train_loss_key: str | None = None) -> None:
        self.runlog = RunLog(out, "lightning-callback", sink)
        self.val_loss_key = val_loss_key
        self.train_loss_key = train_loss_key
        self._pending: dict | None = None
        self._loss: Any = None  # the step's summed micro-batch losses, on the device
        self._clip: float | None = None
        self._by_norm = True
        self._scales = ScaleTracker()
        self._epoch_lr_due = False

    @property
    def out(self):
        return self.runlog.out

    # -- fit ----------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        import lightning

        algorithm = str(getattr(trainer.gradient_clip_algorithm, "value", trainer.gradient_clip_algorithm) or "norm")
        value = trainer.gradient_clip_val
        self._by_norm = algorithm == "norm"
        self._clip = float(value) if self._by_norm and value else None
        self.runlog.recorder = {"lightning": lightning.__version__, "torch": torch.__version__,
                                "gradient_clip_val": value, "gradient_clip_algorithm": algorithm}
        if self._by_norm:
            self.runlog.config["grad_clip"] = self._clip
        else:
            self.runlog.note(f"gradients were clipped by value at {value}: clipped and clip_factor are not recorded")
        optimizers = getattr(trainer, "optimizers", None) or []
        if optimizers:
            group = optimizers[0].param_groups[0]
            self.runlog.config["lr"] = float(group.get("initial_lr", group["lr"]))

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._fill_epoch_lr(trainer)
        self.runlog.start_epoch()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        params = _clipped_params(trainer, optimizer)
        norm = pre_clip_norm(params)
        self._pending = {
            "step": int(trainer.global_step),
            "epoch": int(trainer.current_epoch),
            "norm": norm,
            "coef": clip_coefficient(norm, self._clip) if norm is not None else None,
            "lr": first_lr(optimizer),
        }

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = _output_loss(outputs)
        if loss is not None:
            self._loss = loss if self._loss is None else self._loss + loss
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        loss, self._loss = self._loss, None
        if loss is None:
            loss = self._metric(trainer, self.train_loss_key, TRAIN_LOSS_KEYS, "training loss")
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.runlog.add_step(step_row(pending["step"], loss=loss, norm=pending["norm"], coef=pending["coef"],
                                      lr=pending["lr"], scale=scaler_scale(scaler), scales=self._scales,
                                      scaler=scaler, with_clip=self._by_norm, epoch=pending["epoch"]))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or str(getattr(trainer.state.fn, "value", trainer.state.fn)) != "fit":
            return
        value = self._metric(trainer, self.val_loss_key, VAL_LOSS_KEYS, "validation loss")
        if value is None:
            return
        optimizers = getattr(trainer, "optimizers", None) or []
        lr = first_lr(optimizers[0]) if optimizers else None
        value, lr = host_values([value, lr])
        self.runlog.add_evaluation(value, lr=lr, epoch=int(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.runlog.end_epoch(epoch=int(trainer.current_epoch))
        self._epoch_lr_due = True  # Lightning steps epoch schedulers after this hook
        self._write(trainer, "running")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._fill_epoch_lr(trainer)
        history = self._write(trainer, "completed")
        if history is not None:
            self.runlog.say(self.runlog.summary())

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self._write(trainer, status, f"{type(exception).__name__}: {exception}")

    # -- helpers --------------------------------------------------------------------------
    def _fill_epoch_lr(self, trainer: Any) -> None:
        """The last ended epoch's ``lr``: the LR in force now, after its scheduler step."""
        optimizers = getattr(trainer, "optimizers", None) or []
        if self._epoch_lr_due and optimizers and self.runlog.epoch_ends:
            (self.runlog.epoch_ends[-1]["lr"],) = host_values([first_lr(optimizers[0])])
        self._epoch_lr_due = False

    def _metric(self, trainer: Any, key: str | None, candidates: tuple[str, ...], what: str) -> Any:
        metrics = trainer.callback_metrics
        names = (key,) if key else candidates
        for name in names:
            if name in metrics:
                value = metrics[name]
                return value.detach() if isinstance(value, torch.Tensor) else value
        self.runlog.note(f"no {what} in trainer.callback_metrics under {', '.join(map(repr, names))} "
                         f"(logged: {', '.join(sorted(metrics)) or 'nothing'})")
        return None

    def _write(self, trainer: Any, status: str, message: str = ""):
        if not getattr(trainer, "is_global_zero", True):
            return None
        return self.runlog.write(status, message)


def _clipped_params(trainer: Any, optimizer: Any) -> list:
    """The parameters Lightning clips for ``optimizer`` (its precision plugin's main params)."""
    plugin = getattr(trainer, "precision_plugin", None)
    if plugin is not None and hasattr(plugin, "main_params"):
        return list(plugin.main_params(optimizer))
    return [p for group in optimizer.param_groups for p in group["params"]]


def _output_loss(outputs: Any) -> Any:
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    return loss.detach() if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None


__getattr__ = module_getattr(globals(), _Recording, "lightning.pytorch:Callback", "lightning")  # NbtrainCallback, built on first use


__all__ = ["NbtrainCallback", "TRAIN_LOSS_KEYS", "VAL_LOSS_KEYS"]
